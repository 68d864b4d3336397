"""What every page's form shares: its URL's query as plain text, and a labelled field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from dash import html

__all__ = ["field", "query_text"]


def query_text(query: Mapping[str, Any] | str) -> dict[str, str]:
    """``?a=b&...`` or the dict Dash hands a page layout, as ``{key: last value}``."""
    if isinstance(query, str):
        query = {k: v for k, v in parse_qs(query.lstrip("?"), keep_blank_values=True).items()}
    return {k: (v[-1] if isinstance(v, list) else str(v)).strip() for k, v in query.items()}


def field(label: str, control: Any) -> html.Label:
    return html.Label([html.Span(label), control], className="field")
