"""The HTML beside the waterfall chart: one label per row (indented by depth, errors in
red, the selected span highlighted) and the legend (service colours and the marks).

The labels are one component holding escaped HTML, not one Dash component per row: a
thousand ``html.Div`` took the browser about 7 s to mount on the 2-core CI machine under
load, one block of HTML about 0.5 s.
"""

from __future__ import annotations

import html as escaping

from dash import dcc, html

from ._colors import ERROR_COLOR, GOVERNANCE_COLOR, PATH_COLOR, service_color
from ._waterfall import Waterfall

__all__ = ["waterfall_labels", "waterfall_legend"]


def waterfall_labels(drawn: Waterfall) -> dcc.Markdown:
    rows = []
    for row in drawn.rows:
        text = escaping.escape(row.text)
        classes = "wf-label" + (" error" if row.failed else "") + (" selected" * row.selected)
        rows.append(f'<div class="{classes}" style="padding-left:{0.3 + row.depth:.1f}em" '
                    f'title="{text}">{text}</div>')  # fmt: skip
    return dcc.Markdown("".join(rows), dangerously_allow_html=True, className="wf-rows")


def _mark(symbol: str, color: str, text: str) -> html.Span:
    return html.Span([html.Span(symbol, style={"color": color}), f" {text}"], className="mark")


def waterfall_legend(drawn: Waterfall) -> list[html.Span]:
    services = [
        html.Span([html.Span(className="swatch", style={"background": service_color(s)}), s],
                  className="mark")
        for s in drawn.services
    ]  # fmt: skip
    marks = [
        _mark("✕", ERROR_COLOR, "error"),
        _mark("◆", GOVERNANCE_COLOR, "governance event"),
        _mark("○", "#333", "event"),
        _mark("━", PATH_COLOR, "critical path"),
    ]
    return services + marks
