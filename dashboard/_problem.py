"""How a page says something went wrong: one sentence with a code, never a traceback."""

from __future__ import annotations

from dash import html

from storage import StorageError

from ._sources import Unavailable

__all__ = ["EXPECTED", "problem"]

# What a callback catches and shows: a store that is down, a query the person must fix.
EXPECTED = (Unavailable, StorageError)


def problem(err: BaseException) -> html.Div:
    code = getattr(err, "code", "BAD_REQUEST")
    kind = "unavailable" if code in ("UNAVAILABLE", "NOT_FOUND") else "bad-request"
    return html.Div([html.Strong(f"{code}: "), str(err)], className=f"problem {kind}",
                    role="alert")  # fmt: skip
