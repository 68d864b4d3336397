"""The dependency graph: the pipeline's per-window edges merged over a time range, laid out
left to right by call depth, drawn with Plotly (nodes sized by calls and coloured by the
error rate of the calls they answer; edges labelled with calls, error rate and p99)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from storage import DependencyEdge

from ._colors import ERROR_COLOR

__all__ = ["Edge", "graph_figure", "health_color", "layers", "merge_edges"]

_OK, _WARN, _IDLE = "#2ca02c", "#ff9f1c", "#9aa5b1"


@dataclass(frozen=True, slots=True)
class Edge:
    """Calls from one node to another over the whole range (summed over its windows)."""

    caller: str
    callee: str
    caller_service: str
    callee_service: str
    calls: int
    errors: int
    p99_ms: float  # the worst window's
    method: str = ""

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def _nodes(edge: DependencyEdge) -> tuple[str, str]:
    if edge.level == "instance":
        return (f"{edge.caller} {edge.caller_instance}".strip(),
                f"{edge.callee} {edge.callee_instance}".strip())  # fmt: skip
    if edge.level == "method":
        return edge.caller, edge.method or edge.callee
    return edge.caller, edge.callee


def merge_edges(edges: Iterable[DependencyEdge], focus: str = "") -> list[Edge]:
    """One edge per (caller, callee) node pair, busiest first; with ``focus``, only the
    edges into or out of that service."""
    merged: dict[tuple[str, str], list[Any]] = {}
    for e in edges:
        if focus and focus not in (e.caller, e.callee):
            continue
        caller, callee = _nodes(e)
        m = merged.setdefault((caller, callee), [e.caller, e.callee, 0, 0, 0.0, e.method])
        m[2] += e.calls
        m[3] += e.errors
        m[4] = max(m[4], e.p99_ms)
    out = [Edge(caller, callee, *values) for (caller, callee), values in merged.items()]
    out.sort(key=lambda e: (-e.calls, e.caller, e.callee))
    return out


def layers(edges: list[Edge]) -> dict[str, int]:
    """Each node's column: 0 for nodes nothing calls, else one past its deepest caller
    (cycles cut at the number of nodes, so a loop cannot hang the page)."""
    nodes = sorted({e.caller for e in edges} | {e.callee for e in edges})
    column = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):
        changed = False
        for e in edges:
            if e.caller != e.callee and column[e.callee] < column[e.caller] + 1:
                column[e.callee] = min(column[e.caller] + 1, len(nodes))
                changed = True
        if not changed:
            break
    return column


def health_color(calls: int, errors: int) -> str:
    if not calls:
        return _IDLE
    rate = errors / calls
    return _OK if rate < 0.01 else _WARN if rate < 0.05 else ERROR_COLOR


def graph_figure(edges: list[Edge]) -> dict[str, Any]:
    """The graph as a Plotly figure (a plain dict); a node's customdata is its service."""
    column = layers(edges)
    by_column: dict[int, list[str]] = {}
    for node in sorted(column):
        by_column.setdefault(column[node], []).append(node)
    pos = {node: (col, -i + (len(names) - 1) / 2)
           for col, names in by_column.items() for i, node in enumerate(names)}  # fmt: skip
    calls_in = dict.fromkeys(column, 0)
    errors_in = dict.fromkeys(column, 0)
    calls_any = dict.fromkeys(column, 0)
    service_of = {}
    for e in edges:
        calls_in[e.callee] += e.calls
        errors_in[e.callee] += e.errors
        calls_any[e.callee] += e.calls
        calls_any[e.caller] += e.calls
        service_of[e.caller], service_of[e.callee] = e.caller_service, e.callee_service
    biggest = max(calls_any.values(), default=1) or 1
    nodes = sorted(column)
    node_trace = {
        "type": "scatter", "mode": "markers+text", "name": "services",
        "x": [pos[n][0] for n in nodes], "y": [pos[n][1] for n in nodes],
        "text": nodes, "textposition": "bottom center",
        "customdata": [service_of[n] for n in nodes],
        "hovertext": [f"{n}<br>{calls_in[n]} calls in, {errors_in[n]} errors" for n in nodes],
        "hoverinfo": "text",
        "marker": {"size": [18 + 30 * math.sqrt(calls_any[n] / biggest) for n in nodes],
                   "color": [health_color(calls_in[n], errors_in[n]) for n in nodes],
                   "line": {"width": 1, "color": "#333"}},
    }  # fmt: skip
    annotations = []
    for e in edges:
        (x0, y0), (x1, y1) = pos[e.caller], pos[e.callee]
        annotations.append({
            "x": x1, "y": y1, "ax": x0, "ay": y0, "xref": "x", "yref": "y", "axref": "x",
            "ayref": "y", "showarrow": True, "arrowhead": 3, "arrowsize": 1.2, "arrowwidth": 1.5,
            "arrowcolor": health_color(e.calls, e.errors), "standoff": 14, "startstandoff": 14,
            "text": "",
        })  # fmt: skip
        annotations.append({
            "x": (x0 + x1) / 2, "y": (y0 + y1) / 2 + 0.08, "xref": "x", "yref": "y",
            "showarrow": False, "font": {"size": 10, "color": "#333"},
            "text": f"{e.calls} calls · {e.error_rate:.1%} err · p99 {e.p99_ms:.1f} ms",
            "bgcolor": "rgba(255,255,255,0.8)",
        })  # fmt: skip
    rows = max((len(names) for names in by_column.values()), default=1)
    layout = {
        "height": max(320, 110 * rows), "showlegend": False, "plot_bgcolor": "white",
        "margin": {"l": 20, "r": 20, "t": 20, "b": 20}, "annotations": annotations,
        "xaxis": {"visible": False, "range": [-0.5, max(column.values(), default=0) + 0.5]},
        "yaxis": {"visible": False, "range": [-(rows / 2) - 0.3, rows / 2]},
        "hovermode": "closest", "clickmode": "event", "dragmode": "pan",
    }  # fmt: skip
    return {"data": [node_trace], "layout": layout}
