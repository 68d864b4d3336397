"""Two traces' structures side by side, as Jaeger's trace comparison shows them.

A span is placed by its path from the root: the ``service: name`` of each ancestor and its
own. The two trees are merged on those paths; each node counts its spans in either trace,
so a call made only in one trace, or made more often in one, stands out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._model import Trace
from ._traceview import span_tree

__all__ = ["DiffNode", "compare_traces"]


@dataclass(frozen=True, slots=True)
class DiffNode:
    """One operation path of the merged tree and how many spans each trace has on it."""

    path: tuple[str, ...]
    service: str
    name: str
    count_a: int
    count_b: int
    errors_a: int = 0
    errors_b: int = 0

    @property
    def depth(self) -> int:
        return len(self.path) - 1

    @property
    def state(self) -> str:
        """``same``, ``only-a``, ``only-b``, ``more-a`` or ``more-b``."""
        if self.count_a == self.count_b:
            return "same"
        if not self.count_b:
            return "only-a"
        if not self.count_a:
            return "only-b"
        return "more-a" if self.count_a > self.count_b else "more-b"


def _paths(trace: Trace) -> dict[tuple[str, ...], list[int]]:
    """Each operation path in tree order, with [spans, errors] on it."""
    paths: dict[tuple[str, ...], list[int]] = {}
    stack: list[str] = []
    for node in span_tree(trace):
        del stack[node.depth :]
        stack.append(f"{node.span.service}: {node.span.name}")
        counts = paths.setdefault(tuple(stack), [0, 0])
        counts[0] += 1
        counts[1] += node.span.status == "ERROR"
    return paths


def compare_traces(a: Trace, b: Trace) -> list[DiffNode]:
    """The merged tree of ``a`` and ``b``, depth first; a path of ``b`` alone follows its
    nearest shared ancestor's subtree in ``a``."""
    in_a, in_b = _paths(a), _paths(b)
    order = list(in_a)
    for path in in_b:
        if path in in_a:
            continue
        # after the last path already placed that shares this path's parent prefix
        parent = path[:-1]
        at = max((i for i, p in enumerate(order) if p[: len(parent)] == parent), default=-1)
        order.insert(at + 1, path)
    nodes = []
    for path in order:
        count_a, errors_a = in_a.get(path, (0, 0))
        count_b, errors_b = in_b.get(path, (0, 0))
        service, _, name = path[-1].partition(": ")
        nodes.append(DiffNode(path, service, name, count_a, count_b, errors_a, errors_b))
    return nodes
