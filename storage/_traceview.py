"""How a stored trace reads: its span tree, its critical path and the CLI's text lines.

Shared by everything that shows a trace (``callscope trace``, ``callscope traces``, the demo,
the dashboard), so a tree is nested and a path is computed one way. Spans whose parent is
not stored become roots; a parent loop (corrupt data) cannot hang or drop a span.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from callscope_contract import SpanRecord

from ._critical import children_by_id, critical_stretches
from ._model import Trace, TraceSummary

__all__ = ["PathSegment", "SpanNode", "critical_path", "span_tree", "summary_line", "tree_lines"]


@dataclass(frozen=True, slots=True)
class SpanNode:
    """One span in tree order: its depth and the ids of its children (oldest first)."""

    span: SpanRecord
    depth: int
    children: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PathSegment:
    """A stretch of time during which ``span_id`` itself was what the trace waited on."""

    span_id: str
    start_us: int
    end_us: int


def _end(span: SpanRecord) -> int:
    return span.start_us + span.duration_us


def _oldest_first(trace: Trace) -> list[SpanRecord]:
    return sorted(trace.spans, key=lambda s: (s.start_us, s.span_id))


def _children(trace: Trace) -> tuple[list[SpanRecord], dict[str, list[SpanRecord]]]:
    """Roots (no stored parent) and each span's children, all oldest first."""
    spans = _oldest_first(trace)
    kids = children_by_id([s.span_id for s in spans], [s.parent_span_id for s in spans])
    placed = {i for indices in kids.values() for i in indices}
    roots = [s for i, s in enumerate(spans) if i not in placed]
    return roots, {parent: [spans[i] for i in indices] for parent, indices in kids.items()}


def span_tree(trace: Trace) -> list[SpanNode]:
    """Every span once, depth first: a parent, then its children's subtrees, oldest first."""
    roots, kids = _children(trace)
    nodes: list[SpanNode] = []
    seen: set[str] = set()
    # spans caught in a parent loop are reached as roots
    for top in [*roots, *_oldest_first(trace)]:
        stack = [(top, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            below = kids.get(span.span_id, [])
            nodes.append(SpanNode(span, depth, tuple(c.span_id for c in below)))
            stack.extend((c, depth + 1) for c in reversed(below))
    return nodes


def critical_path(trace: Trace) -> list[PathSegment]:
    """The spans the root waited on, as Jaeger computes it, in time order
    (``storage._critical``: the rule, shared with the batch job)."""
    if not trace.spans:
        return []
    spans = _oldest_first(trace)
    ids = [s.span_id for s in spans]
    kids = children_by_id(ids, [s.parent_span_id for s in spans])
    root = trace.root
    at = next(i for i, s in enumerate(spans) if s is root)
    stretches = critical_stretches(
        [s.start_us for s in spans], [_end(s) for s in spans], ids, kids, at
    )
    segments = [PathSegment(ids[i], start, end) for i, start, end in stretches]
    return sorted(segments, key=lambda g: (g.start_us, g.end_us))


def tree_lines(trace: Trace) -> list[str]:
    """One line per span, children indented under their parent (the CLI's tree).

    Columns (kind and name, service, duration, status) are as wide as the trace's
    longest entry, so they line up whatever the names' lengths and the tree's depth.
    """
    nodes = span_tree(trace)
    if not nodes:
        return []
    kind_w = max(len(n.span.kind) for n in nodes)
    rows = [
        (
            f"{'  ' * n.depth}{n.span.kind:<{kind_w}} {n.span.name}",
            n.span.service,
            f"{n.span.duration_us / 1000:.3f} ms",
            n.span.status if not n.span.error_code else f"{n.span.status} {n.span.error_code}",
        )
        for n in nodes
    ]
    label_w, service_w, duration_w = (max(len(r[i]) for r in rows) for i in range(3))
    return [
        f"{label:<{label_w}}  {service:<{service_w}}  {duration:>{duration_w}}  {status}"
        for label, service, duration, status in rows
    ]


def summary_line(summary: TraceSummary) -> str:
    """Start (UTC), trace id, root span, span count, duration, and ERROR when a span failed."""
    started = dt.datetime.fromtimestamp(summary.start_us / 1e6, dt.UTC)
    return (
        f"{started:%Y-%m-%d %H:%M:%S.%f}"[:-3]
        + f"  {summary.trace_id}  {summary.root_service}:{summary.root_name}  "
        + f"{summary.span_count} spans  {summary.duration_us / 1000:.3f} ms"
        + ("  ERROR" if summary.error_count else "")
    )
