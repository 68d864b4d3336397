"""What every page's form shares: its URL's query as plain text, and a labelled field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from dash import dcc, html

__all__ = ["field", "query_text", "service_and_lookback"]


def query_text(query: Mapping[str, Any] | str) -> dict[str, str]:
    """``?a=b&...`` or the dict Dash hands a page layout, as ``{key: last value}``."""
    if isinstance(query, str):
        query = {k: v for k, v in parse_qs(query.lstrip("?"), keep_blank_values=True).items()}
    return {k: (v[-1] if isinstance(v, list) else str(v)).strip() for k, v in query.items()}


def field(label: str, control: Any) -> html.Label:
    return html.Label([html.Span(label), control], className="field")


def service_and_lookback(
    prefix: str, params: Mapping[str, str], lookbacks: Mapping[str, int], placeholder: str
) -> html.Div:
    """The form of the pages read by service over a recent span of time: inputs
    ``<prefix>-service`` and ``<prefix>-lookback``."""
    return html.Div(
        [
            field("service", dcc.Input(id=f"{prefix}-service", value=params["service"],
                                       type="text", placeholder=placeholder, debounce=True)),
            field("lookback", dcc.Dropdown(id=f"{prefix}-lookback", options=list(lookbacks),
                                           value=params["lookback"], clearable=False)),
        ],
        className="search-form",
    )  # fmt: skip
