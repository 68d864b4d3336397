"""A trace as a waterfall: one Plotly bar per span (coloured by service, nested in tree
order, labelled in HTML beside the chart), errors outlined and crossed, span events as
markers (governance events -- retries, failovers, breakers, limits, weight changes -- in
their own colour), and the critical path drawn as a dark line through the bars.

Collapsing a span hides its descendants; its label then starts with a closed arrow.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from storage import SpanNode, Trace, critical_path, span_tree

from ._colors import ERROR_COLOR, GOVERNANCE_COLOR, PATH_COLOR, service_color

__all__ = [
    "ROW_PX",
    "TOP_PX",
    "Row",
    "Waterfall",
    "is_governance_event",
    "visible_nodes",
    "waterfall",
    "waterfall_figure",
]

ROW_PX = 22
TOP_PX = 30  # the x axis (ms) sits above the rows
BOTTOM_PX = 10
_GOVERNANCE_WORDS = (
    "retry", "failover", "failback", "failcache", "failsafe", "failfast", "fork", "budget",
    "breaker", "circuit", "limit", "flow", "quota", "tier",
    "throttl", "reject", "busy", "degrad", "mask", "fallback", "weight", "isolat", "route",
)  # fmt: skip


def is_governance_event(name: str) -> bool:
    """Whether a span event records a governance decision (by the words rpc's layers use)."""
    lowered = name.lower()
    return any(word in lowered for word in _GOVERNANCE_WORDS)


def visible_nodes(nodes: Iterable[SpanNode], collapsed: Collection[str]) -> list[SpanNode]:
    """The tree rows left when the subtrees under ``collapsed`` span ids are folded away."""
    shown: list[SpanNode] = []
    fold_depth: int | None = None
    for node in nodes:
        if fold_depth is not None:
            if node.depth > fold_depth:
                continue
            fold_depth = None
        shown.append(node)
        if node.span.span_id in collapsed and node.children:
            fold_depth = node.depth
    return shown


@dataclass(slots=True)
class _Bars:
    rows: list[int]
    widths: list[float]
    bases: list[float]
    ids: list[str]
    hover: list[str]
    lines: list[str]


@dataclass(frozen=True, slots=True)
class Row:
    """One waterfall row's label, drawn in HTML beside the chart."""

    span_id: str
    depth: int
    text: str
    failed: bool
    selected: bool


@dataclass(frozen=True, slots=True)
class Waterfall:
    """The chart (a Plotly figure as a plain dict), its rows' labels, top to bottom, and the
    services in it (for the legend); row ``i`` is ``ROW_PX`` pixels high at ``TOP_PX +
    i * ROW_PX`` in the chart, so HTML labels of that height line up with the bars."""

    figure: dict[str, Any]
    rows: list[Row]
    services: list[str]


def _label(node: SpanNode, collapsed: Collection[str]) -> str:
    arrow = ("▸ " if node.span.span_id in collapsed else "▾ ") if node.children else ""
    return f"{arrow}{node.span.service}: {node.span.name}"


def waterfall(trace: Trace, collapsed: Collection[str] = (), selected: str = "") -> Waterfall:
    """The waterfall of ``trace``; times are ms from the trace's start.

    Labels and legend are HTML, not Plotly text: Plotly measures every tick label for
    overlaps (over a minute for 1,000 rows as y-axis ticks) and a text trace still cost
    twice the bars. The figure is a plain dict: graph objects validate every value.
    """
    t0 = trace.start_us
    nodes = visible_nodes(span_tree(trace), collapsed)
    row_of = {n.span.span_id: i for i, n in enumerate(nodes)}
    by_service: dict[str, _Bars] = {}
    errors_x: list[float] = []
    errors_y: list[int] = []
    for row, node in enumerate(nodes):
        span = node.span
        bars = by_service.setdefault(span.service, _Bars([], [], [], [], [], []))
        failed = span.status == "ERROR"
        bars.rows.append(row)
        bars.widths.append(max(span.duration_us, 1) / 1000)
        bars.bases.append((span.start_us - t0) / 1000)
        bars.ids.append(span.span_id)
        bars.lines.append(ERROR_COLOR if failed else service_color(span.service))
        bars.hover.append(
            f"{span.service}: {span.name}<br>{span.kind} {span.duration_us / 1000:.3f} ms"
            + (f"<br>ERROR {span.error_code} {span.error_message[:80]}" if failed else "")
        )
        if failed:
            errors_x.append((span.start_us + span.duration_us - t0) / 1000)
            errors_y.append(row)
    data: list[dict[str, Any]] = [
        {"type": "bar", "name": service, "orientation": "h", "y": bars.rows, "x": bars.widths,
         "base": bars.bases, "customdata": bars.ids, "hovertext": bars.hover,
         "hoverinfo": "text", "marker": {"color": service_color(service),
                                         "line": {"color": bars.lines, "width": 2}}}
        for service, bars in sorted(by_service.items())
    ]  # fmt: skip
    data += _errors(errors_x, errors_y)
    data += _events(nodes, row_of, t0)
    data += _critical_path(trace, row_of, t0)
    shapes = []
    if selected in row_of:
        row = row_of[selected]
        shapes.append({"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "y0": row - 0.5,
                       "y1": row + 0.5, "fillcolor": "#fff3b0", "line": {"width": 0},
                       "layer": "below"})  # fmt: skip
    layout = {
        "barmode": "overlay", "bargap": 0.25, "height": TOP_PX + ROW_PX * len(nodes) + BOTTOM_PX,
        "margin": {"l": 0, "r": 10, "t": TOP_PX, "b": BOTTOM_PX, "autoexpand": False},
        "plot_bgcolor": "white", "shapes": shapes, "showlegend": False,
        "xaxis": {"side": "top", "gridcolor": "#eee", "rangemode": "tozero", "ticksuffix": " ms"},
        "yaxis": {"range": [len(nodes) - 0.5, -0.5], "showticklabels": False,
                  "fixedrange": True, "showgrid": False, "zeroline": False},
        "dragmode": "zoom", "hovermode": "closest", "clickmode": "event",
    }  # fmt: skip
    rows = [
        Row(n.span.span_id, n.depth, _label(n, collapsed), n.span.status == "ERROR",
            n.span.span_id == selected)
        for n in nodes
    ]  # fmt: skip
    return Waterfall({"data": data, "layout": layout}, rows, sorted(by_service))


def waterfall_figure(
    trace: Trace, collapsed: Collection[str] = (), selected: str = ""
) -> dict[str, Any]:
    """Just the chart of :func:`waterfall`."""
    return waterfall(trace, collapsed, selected).figure


def _errors(xs: list[float], rows: list[int]) -> list[dict[str, Any]]:
    if not xs:
        return []
    return [
        {
            "type": "scatter",
            "name": "error",
            "x": xs,
            "y": rows,
            "mode": "markers",
            "hoverinfo": "skip",
            "marker": {"symbol": "x", "size": 9, "color": ERROR_COLOR},
        }
    ]


def _events(nodes: list[SpanNode], row_of: dict[str, int], t0: int) -> list[dict[str, Any]]:
    kinds: dict[bool, tuple[list[float], list[int], list[str]]] = {
        True: ([], [], []), False: ([], [], [])
    }  # fmt: skip
    for node in nodes:
        for event in node.span.events:
            xs, ys, texts = kinds[is_governance_event(event.name)]
            xs.append((event.time_us - t0) / 1000)
            ys.append(row_of[node.span.span_id])
            attrs = ", ".join(f"{k}={v}" for k, v in list(event.attributes.items())[:6])
            texts.append(f"{event.name} {attrs}".strip())
    return [
        {"type": "scatter", "name": "governance event" if governance else "event", "x": xs,
         "y": ys, "mode": "markers", "hovertext": texts, "hoverinfo": "text",
         "marker": {"symbol": "diamond" if governance else "circle",
                    "size": 10 if governance else 6, "line": {"width": 1, "color": "#333"},
                    "color": GOVERNANCE_COLOR if governance else "#ffffff"}}
        for governance, (xs, ys, texts) in kinds.items()
        if xs
    ]  # fmt: skip


def _critical_path(trace: Trace, row_of: dict[str, int], t0: int) -> list[dict[str, Any]]:
    xs: list[float | None] = []
    ys: list[int | None] = []
    for seg in critical_path(trace):
        if seg.span_id in row_of:
            row = row_of[seg.span_id]
            xs += [(seg.start_us - t0) / 1000, (seg.end_us - t0) / 1000, None]
            ys += [row, row, None]
    if not xs:
        return []
    return [
        {
            "type": "scatter",
            "name": "critical path",
            "x": xs,
            "y": ys,
            "mode": "lines",
            "hoverinfo": "skip",
            "line": {"color": PATH_COLOR, "width": 3},
        }
    ]
