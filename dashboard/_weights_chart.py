"""Why traffic moved: each instance's routing weight over time (a step line, the pipeline's
reason on hover) beside the p99 latency its providers reported (dotted, right axis)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from callscope_contract import KpiSample
from storage import WeightChange

from ._colors import service_color

__all__ = ["weights_figure"]


def _time(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def weights_figure(changes: list[WeightChange], samples: list[KpiSample]) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for instance in sorted({c.instance for c in changes}):
        mine = [c for c in changes if c.instance == instance]
        data.append({
            "type": "scatter", "mode": "lines+markers", "line": {"shape": "hv"},
            "name": f"{instance} weight", "x": [_time(c.time_us) for c in mine],
            "y": [c.weight for c in mine], "marker": {"color": service_color(instance)},
            "hovertext": [f"{instance}: weight {c.weight}<br>{c.reason}" for c in mine],
            "hoverinfo": "text",
        })  # fmt: skip
    p99: dict[str, dict[int, float]] = {}
    for s in samples:
        if s.role == "provider":
            line = p99.setdefault(s.instance, {})
            line[s.window_start_us] = max(line.get(s.window_start_us, 0.0),
                                          float(s.latency_ms.get("p99", 0) or 0))  # fmt: skip
    for instance, points in sorted(p99.items()):
        starts = sorted(points)
        data.append({
            "type": "scatter", "mode": "lines", "yaxis": "y2", "name": f"{instance} p99 ms",
            "x": [_time(t) for t in starts], "y": [points[t] for t in starts],
            "line": {"dash": "dot", "color": service_color(instance)},
        })  # fmt: skip
    return {
        "data": data,
        "layout": {"height": 300, "margin": {"l": 50, "r": 50, "t": 20, "b": 40},
                   "plot_bgcolor": "white", "hovermode": "closest",
                   "yaxis": {"title": {"text": "weight"}, "rangemode": "tozero",
                             "gridcolor": "#eee"},
                   "yaxis2": {"title": {"text": "p99 ms"}, "overlaying": "y", "side": "right",
                              "rangemode": "tozero", "showgrid": False},
                   "legend": {"orientation": "h", "y": -0.2}},
    }  # fmt: skip
