"""The HTML beside the waterfall chart: one label per row (indented by depth, errors in
red, the selected span highlighted) and the legend (service colours and the marks).

The labels are one component holding escaped HTML, not one Dash component per row: a
thousand ``html.Div`` took the browser about 7 s to mount on the 2-core CI machine under
load, one block of HTML about 0.5 s.
"""

from __future__ import annotations

import html as escaping

from dash import dcc, html

from storage import Trace, WeightChange, span_tree

from ._colors import ERROR_COLOR, GOVERNANCE_COLOR, PATH_COLOR, service_color
from ._waterfall import Waterfall, is_governance_event

__all__ = ["governance_events", "waterfall_labels", "waterfall_legend"]


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


def _why(changes: list[WeightChange]) -> html.Div:
    text = "; ".join(f"{c.instance} \u2192 {c.weight}: {c.reason}" for c in changes)
    return html.Div(f"why: {text}", className="weight-why")


def governance_events(
    trace: Trace, reasons: dict[tuple[str, int], list[WeightChange]] | None = None
) -> html.Div:
    """The governance decisions recorded on this trace's spans (retries, failovers,
    failsafe, limits, breakers...), in time order: why this call took the path it did.
    ``reasons``: the pipeline's weight changes behind a ``weights.applied`` event, by
    (span id, event time), shown under it."""
    reasons = reasons or {}
    found = [
        (event.time_us, node.span, event)
        for node in span_tree(trace)
        for event in node.span.events
        if is_governance_event(event.name)
    ]
    if not found:
        return html.Div(html.P("No governance decision on this trace.", className="empty"))
    found.sort(key=lambda item: item[0])
    rows = [
        html.Tr([
            html.Td(f"+{(time_us - trace.start_us) / 1000:.3f} ms"),
            html.Td(f"{span.service}: {span.name}"),
            html.Td(event.name, className="governance"),
            html.Td([", ".join(f"{k}={v}" for k, v in event.attributes.items()),
                     *([_why(reasons[(span.span_id, time_us)])]
                       if (span.span_id, time_us) in reasons else [])]),
        ])
        for time_us, span, event in found
    ]  # fmt: skip
    header = html.Tr([html.Th(h) for h in ("at", "span", "decision", "details")])
    return html.Div([html.H3(f"Governance decisions ({len(rows)})"),
                     html.Table([header, *rows], className="top governance-events")])  # fmt: skip
