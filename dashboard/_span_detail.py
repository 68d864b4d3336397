"""One span's detail panel: what it was, its ids (copyable), attributes and events."""

from __future__ import annotations

import json
from typing import Any

from dash import dcc, html

from callscope_contract import SpanRecord

from ._colors import service_color
from ._waterfall import is_governance_event

__all__ = ["span_detail"]


def _copyable(label: str, value: str, key: str) -> html.Tr:
    return html.Tr([
        html.Th(label),
        html.Td([html.Code(value, id=f"span-{key}"),
                 dcc.Clipboard(target_id=f"span-{key}", title="copy", className="copy")]),
    ])  # fmt: skip


def _row(label: str, value: Any) -> html.Tr:
    return html.Tr([html.Th(label), html.Td(str(value))])


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def span_detail(span: SpanRecord, trace_start_us: int) -> html.Div:
    """The panel for ``span``; offsets are milliseconds from the trace's start."""
    failed = span.status == "ERROR"
    fields = [
        _row("kind", span.kind),
        _row("instance", span.instance or "-"),
        _row("host", span.host or "-"),
        _row("peer", f"{span.peer_service or '-'} {span.peer_instance}".strip()),
        _row("start", f"+{(span.start_us - trace_start_us) / 1000:.3f} ms"),
        _row("duration", f"{span.duration_us / 1000:.3f} ms"),
        _row("status", f"{span.status} {span.error_code}".strip()),
    ]
    if failed and span.error_message:
        fields.append(_row("error", span.error_message))
    ids = [
        _copyable("trace id", span.trace_id, "trace-id"),
        _copyable("span id", span.span_id, "span-id"),
        _copyable("parent id", span.parent_span_id or "-", "parent-id"),
        _copyable("log correlation", f"trace_id={span.trace_id} span_id={span.span_id}", "log"),
    ]
    attributes = [html.Tr([html.Th(k), html.Td(_text(v))])
                  for k, v in sorted(span.attributes.items())]  # fmt: skip
    events = [
        html.Tr([
            html.Td(f"+{(e.time_us - trace_start_us) / 1000:.3f} ms"),
            html.Td(e.name, className="governance" if is_governance_event(e.name) else ""),
            html.Td(", ".join(f"{k}={_text(v)}" for k, v in e.attributes.items())),
        ])
        for e in span.events
    ]  # fmt: skip
    return html.Div(
        [
            html.H3(
                [
                    html.Span(
                        className="swatch", style={"background": service_color(span.service)}
                    ),
                    f"{span.service}: {span.name}",
                ],
                className="error" if failed else "",
            ),
            html.Table(fields + ids, className="fields"),
            html.H4(f"attributes ({len(attributes)})"),
            html.Table(attributes, className="attributes") if attributes else html.P("none"),
            html.H4(f"events ({len(events)})"),
            html.Table(events, className="events") if events else html.P("none"),
        ],
        className="span-detail",
    )
