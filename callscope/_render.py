"""Stored traces as text: a span tree and a one-line summary, for the CLI and the demo."""

from __future__ import annotations

import datetime as dt

from storage import Trace

__all__ = ["trace_summary", "trace_tree"]


def trace_tree(trace: Trace) -> list[str]:
    """One line per span, children indented under their parent, oldest first."""
    depth: dict[str, int] = {}
    lines = []
    for span in sorted(trace.spans, key=lambda s: s.start_us):
        depth[span.span_id] = depth.get(span.parent_span_id or "", -1) + 1
        status = span.status if not span.error_code else f"{span.status} {span.error_code}"
        lines.append(
            f"{'  ' * depth[span.span_id]}{span.kind:<6} {span.name:<20} "
            f"{span.service:<14} {span.duration_us / 1000:7.3f} ms  {status}"
        )
    return lines


def trace_summary(trace: Trace) -> str:
    """Start (UTC), trace id, root span, span count, duration, and ERROR when a span failed."""
    root = trace.root
    started = dt.datetime.fromtimestamp(trace.start_us / 1e6, dt.UTC)
    return (
        f"{started:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        + f"  {trace.trace_id}  {root.service}:{root.name}  {len(trace.spans)} spans  "
        + f"{trace.duration_us / 1000:.3f} ms{'  ERROR' if trace.has_error else ''}"
    )
