"""Health KPI samples as time series: calls per second and error rate, latency p50/p95/p99,
and the process's CPU and memory, one line per instance (and role)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from callscope_contract import KpiSample

__all__ = ["kpi_figures"]


def _series(samples: Iterable[KpiSample]) -> dict[str, dict[int, dict[str, float]]]:
    """Per ``instance (role)``, per window start: the window's numbers, methods summed
    (latency quantiles: the worst method's, an upper bound)."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for s in samples:
        line = out.setdefault(f"{s.instance} ({s.role})", {})
        w = line.setdefault(s.window_start_us, {"calls": 0.0, "errors": 0.0, "window_s": s.window_s,
                                                "p50": 0.0, "p95": 0.0, "p99": 0.0,
                                                "cpu": 0.0, "rss_mb": 0.0})  # fmt: skip
        w["calls"] += s.count
        w["errors"] += s.errors
        for q in ("p50", "p95", "p99"):
            w[q] = max(w[q], float(s.latency_ms.get(q, 0) or 0))
        w["cpu"] = max(w["cpu"], s.cpu_percent)
        w["rss_mb"] = max(w["rss_mb"], s.rss_bytes / 2**20)
    return out


def _time(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _figure(title: str, unit: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": lines,
        "layout": {"title": {"text": title, "font": {"size": 13}}, "height": 240,
                   "margin": {"l": 50, "r": 10, "t": 35, "b": 35}, "plot_bgcolor": "white",
                   "yaxis": {"title": {"text": unit}, "rangemode": "tozero", "gridcolor": "#eee"},
                   "xaxis": {"gridcolor": "#eee"}, "legend": {"font": {"size": 10}},
                   "hovermode": "x unified"},
    }  # fmt: skip


def kpi_figures(samples: list[KpiSample]) -> dict[str, dict[str, Any]]:
    """Four figures (plain dicts): ``qps``, ``errors`` (%), ``latency`` (ms), ``process``."""
    series = _series(samples)
    qps, errors, latency, process = [], [], [], []
    for name, windows in sorted(series.items()):
        starts = sorted(windows)
        x = [_time(t) for t in starts]
        ws = [windows[t] for t in starts]
        line = {"type": "scatter", "mode": "lines+markers", "x": x, "marker": {"size": 4}}
        if "(process)" in name:
            process.append({**line, "name": f"{name} CPU %", "y": [w["cpu"] for w in ws]})
            process.append({**line, "name": f"{name} RSS MiB", "y": [w["rss_mb"] for w in ws],
                            "line": {"dash": "dot"}})  # fmt: skip
            continue
        qps.append({**line, "name": name, "y": [w["calls"] / (w["window_s"] or 1) for w in ws]})
        rates = [100 * w["errors"] / w["calls"] if w["calls"] else 0 for w in ws]
        errors.append({**line, "name": name, "y": rates})
        for q, dash in (("p50", "dot"), ("p95", "dash"), ("p99", "solid")):
            latency.append({**line, "name": f"{name} {q}", "y": [w[q] for w in ws],
                            "line": {"dash": dash}})  # fmt: skip
    return {
        "qps": _figure("calls per second", "calls/s", qps),
        "errors": _figure("error rate", "%", errors),
        "latency": _figure("latency p50 / p95 / p99", "ms", latency),
        "process": _figure("process CPU and memory", "% / MiB", process),
    }
