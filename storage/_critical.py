"""The critical path's one definition, on plain arrays (Jaeger's rule).

The dashboard's trace view (``critical_path``, on a ``Trace``) and the Spark batch job
(``pipeline._trace_facts``, on Arrow columns turned into lists, millions of spans) both
run this code, so neither pays for the other's representation: spans are indices into
parallel lists, a span's children are looked up by its identity (its span id), and
the result is (span index, start, end) stretches.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

__all__ = ["children_by_id", "critical_stretches"]

Id = TypeVar("Id", bound=Hashable)


def children_by_id(ids: Sequence[str], parents: Sequence[str]) -> dict[str, list[int]]:
    """Each span id's children, as indices in the given order (a span is the child of its
    stored parent; one naming itself, or a parent not stored, is not anyone's child)."""
    stored = set(ids)
    kids: dict[str, list[int]] = {}
    for i, parent in enumerate(parents):
        if parent and parent in stored and parent != ids[i]:
            kids.setdefault(parent, []).append(i)
    return kids


def critical_stretches(
    starts: Sequence[int],
    ends: Sequence[int],
    ids: Sequence[Id],
    kids: Mapping[Id, Sequence[int]],
    root: int,
) -> list[tuple[int, int, int]]:
    """The (span, start, end) stretches ``root`` waited on, walked back from its end.

    From the root's end, walk back: the last child to finish (clipped to its parent's end)
    is on the path back to its own start; before that, the latest child that had finished
    by then; the gaps belong to the parent itself. A span id is followed once (so a parent
    loop or a duplicate id cannot repeat a stretch). ``kids[ids[i]]``: span ``i``'s
    children, oldest first; the stretches come in the order the walk finds them.
    """
    stretches: list[tuple[int, int, int]] = []
    by_end = ends.__getitem__
    visited = {ids[root]}
    # The span being explained: the end of the stretch still to explain, its children
    # latest end first, the next to look at, and whether it is the first look. The spans
    # above it wait on ``stack`` (a leaf child is explained in place: the walk's hot path).
    span, cursor, at, first = root, ends[root], 0, True
    pending: Sequence[int] = sorted(kids.get(ids[root], ()), key=by_end, reverse=True)
    stack: list[tuple[int, int, Sequence[int], int, bool]] = []
    while True:
        floor = starts[span]
        child = -1
        # The first look takes the last child to finish, even one outliving the stretch
        # (it is clipped); later looks only a child that had finished by ``cursor``, when
        # the child after it started.
        while at < len(pending):
            candidate = pending[at]
            at += 1
            if ids[candidate] in visited or starts[candidate] >= cursor:
                continue
            if ends[candidate] > floor and (first or ends[candidate] <= cursor):
                child = candidate
                break
        if child < 0:
            if cursor > floor:
                stretches.append((span, floor, cursor))
            if not stack:
                return stretches
            span, cursor, pending, at, first = stack.pop()
            continue
        visited.add(ids[child])
        child_end = min(ends[child], cursor)
        if child_end < cursor:
            stretches.append((span, child_end, cursor))
        below = kids.get(ids[child])
        if below:
            stack.append((span, max(starts[child], floor), pending, at, False))
            span, cursor, at, first = child, child_end, 0, True
            pending = below if len(below) == 1 else sorted(below, key=by_end, reverse=True)
        else:
            if child_end > starts[child]:
                stretches.append((child, starts[child], child_end))
            cursor, first = max(starts[child], floor), False
