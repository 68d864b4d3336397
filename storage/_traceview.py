"""How a stored trace reads: its span tree, its critical path and the CLI's text lines.

Shared by everything that shows a trace (``callscope trace``, ``callscope traces``, the demo,
the dashboard), so a tree is nested and a path is computed one way. Spans whose parent is
not stored become roots; a parent loop (corrupt data) cannot hang or drop a span.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from callscope_contract import SpanRecord

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


def _children(trace: Trace) -> tuple[list[SpanRecord], dict[str, list[SpanRecord]]]:
    """Roots (no stored parent) and each span's children, all oldest first."""
    ids = {s.span_id for s in trace.spans}
    roots: list[SpanRecord] = []
    kids: dict[str, list[SpanRecord]] = {}
    for span in sorted(trace.spans, key=lambda s: (s.start_us, s.span_id)):
        parent = span.parent_span_id
        if parent and parent in ids and parent != span.span_id:
            kids.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    return roots, kids


def span_tree(trace: Trace) -> list[SpanNode]:
    """Every span once, depth first: a parent, then its children's subtrees, oldest first."""
    roots, kids = _children(trace)
    nodes: list[SpanNode] = []
    seen: set[str] = set()
    pending = sorted(trace.spans, key=lambda s: (s.start_us, s.span_id))
    for top in [*roots, *pending]:  # spans caught in a parent loop are reached as roots
        stack = [(top, 0)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            children = kids.get(span.span_id, [])
            nodes.append(SpanNode(span, depth, tuple(c.span_id for c in children)))
            stack.extend((c, depth + 1) for c in reversed(children))
    return nodes


def critical_path(trace: Trace) -> list[PathSegment]:
    """The spans the root waited on, as Jaeger computes it, in time order.

    From the root's end, walk back: the last child to finish (clipped to its parent's end)
    is on the path back to its own start; before that, the latest child that had finished
    by then; the gaps belong to the parent itself.
    """
    if not trace.spans:
        return []
    _, kids = _children(trace)
    segments: list[PathSegment] = []
    root = trace.root
    # (span, end of the stretch still to explain, children not looked at, first look?)
    stack = [(root, _end(root), _latest_first(kids, root), True)]
    visited = {root.span_id}
    while stack:
        span, cursor, pending, first = stack.pop()
        child = _next_on_path(pending, cursor, span.start_us, first, visited)
        if child is None:
            if cursor > span.start_us:
                segments.append(PathSegment(span.span_id, span.start_us, cursor))
            continue
        visited.add(child.span_id)
        child_end = min(_end(child), cursor)
        if child_end < cursor:
            segments.append(PathSegment(span.span_id, child_end, cursor))
        stack.append((span, max(child.start_us, span.start_us), pending, False))
        stack.append((child, child_end, _latest_first(kids, child), True))
    return sorted(segments, key=lambda g: (g.start_us, g.end_us))


def _latest_first(kids: dict[str, list[SpanRecord]], span: SpanRecord) -> list[SpanRecord]:
    return sorted(kids.get(span.span_id, []), key=_end, reverse=True)


def _next_on_path(
    pending: list[SpanRecord], cursor: int, floor_us: int, first: bool, visited: set[str]
) -> SpanRecord | None:
    """Take from ``pending`` (latest end first) the next child the parent waited on.

    The first look takes the last child to finish, even one outliving the stretch (it is
    clipped); later looks only a child that had finished by ``cursor``, when the child
    after it started.
    """
    while pending:
        child = pending.pop(0)
        if child.span_id in visited or child.start_us >= cursor or _end(child) <= floor_us:
            continue
        if first or _end(child) <= cursor:
            return child
    return None


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
