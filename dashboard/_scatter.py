"""Trace durations over time, as Pinpoint's response-time scatter: one dot per trace,
errors in red; drag a box to pick traces, click a dot to open one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from ._colors import ERROR_COLOR

__all__ = ["scatter_figure"]

_OK_COLOR = "#1f77b4"


def scatter_figure(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """``rows`` are search results (``trace_id``, ``start_us``, ``duration_ms``, ``errors``,
    ``root``); each dot's customdata is its trace id."""
    fig = go.Figure()
    for failed in (False, True):
        picked = [r for r in rows if bool(r["errors"]) == failed]
        if not picked:
            continue
        fig.add_trace(go.Scatter(
            name="with errors" if failed else "ok", mode="markers",
            x=[dt.datetime.fromtimestamp(r["start_us"] / 1e6, dt.UTC) for r in picked],
            y=[r["duration_ms"] for r in picked],
            customdata=[r["trace_id"] for r in picked],
            hovertext=[f"{r['root']}<br>{r['duration_ms']:.3f} ms, {r['spans']} spans"
                       for r in picked],
            hoverinfo="text",
            marker={"color": ERROR_COLOR if failed else _OK_COLOR, "size": 8,
                    "symbol": "x" if failed else "circle", "opacity": 0.8},
        ))  # fmt: skip
    fig.update_layout(
        height=260, margin={"l": 50, "r": 10, "t": 10, "b": 40}, plot_bgcolor="white",
        dragmode="select", clickmode="event+select", hovermode="closest",
        xaxis={"title": "start (UTC)", "gridcolor": "#eee"},
        yaxis={"title": "duration (ms)", "gridcolor": "#eee", "rangemode": "tozero"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )  # fmt: skip
    return fig
