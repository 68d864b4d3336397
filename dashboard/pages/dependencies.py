"""Dependencies: the service graph the pipeline computed for a time range, with drill-down
to instances and methods, and each edge's numbers and traces.

``/dependencies?lookback=1h&level=service&service=orders&window=60`` (``level``: service,
instance, method; ``service`` keeps the edges into or out of that service; ``window``
keeps the results of one window length: the streaming job's short windows or the batch
job's long ones). One read of the
analytics store's edges for the range; click a node to focus on its service. Below the
graph, the batch job's trace-level results for the same range and window: the call paths
(indirect dependencies, three services or more; with ``service``, those through it) and
each service's share of the traces' critical paths.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from .._form import field, query_text
from .._graph import graph_figure, merge_edges
from .._problem import EXPECTED, problem
from .._sources import Sources

__all__ = ["NAME", "PATH", "edges_view", "layout", "paths_view", "register"]

PATH = "/dependencies"
NAME = "Dependencies"
LOOKBACKS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400}
LEVELS = ("service", "instance", "method")

_COLUMNS = [
    {"field": "caller", "flex": 2},
    {"field": "callee", "flex": 2},
    {"field": "calls", "type": "numericColumn", "sort": "desc"},
    {"field": "errors", "type": "numericColumn"},
    {"field": "error_rate", "headerName": "error rate", "type": "numericColumn",
     "valueFormatter": {"function": "d3.format('.2%')(params.value)"}},
    {"field": "p99_ms", "headerName": "p99 (ms)", "type": "numericColumn"},
    {"field": "traces", "cellRenderer": "markdown", "linkTarget": "_self"},
]  # fmt: skip


_PATH_COLUMNS: list[dict[str, Any]] = [
    {"field": "path", "flex": 4},
    {"field": "calls", "type": "numericColumn", "sort": "desc"},
    {"field": "errors", "type": "numericColumn"},
]
_CRITICAL_COLUMNS: list[dict[str, Any]] = [
    {"field": "service", "flex": 2},
    {"field": "share", "headerName": "share of critical paths", "type": "numericColumn",
     "sort": "desc", "valueFormatter": {"function": "d3.format('.1%')(params.value)"}},
    {"field": "critical_ms", "headerName": "critical time (ms)", "type": "numericColumn"},
    {"field": "traces", "headerName": "traces on it", "type": "numericColumn"},
]  # fmt: skip
MAX_PATHS = 100


def _params(query: dict[str, Any] | str) -> dict[str, str]:
    text = query_text(query)
    lookback = text.get("lookback", "1h")
    level = text.get("level", "service")
    window = text.get("window", "")
    return {"lookback": lookback if lookback in LOOKBACKS else "1h",
            "level": level if level in LEVELS else "service",
            "service": text.get("service", ""),
            "window": window if _window_s(window) else ""}  # fmt: skip


def _window_s(text: str) -> float | None:
    """A window length in seconds (``60``, ``3600``), or None for "every window"."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _query_string(params: dict[str, str]) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v})


def edges_view(sources: Sources, query_string: str, now_s: float | None = None) -> dict:
    """The graph figure and the table rows for a query string."""
    params = _params(query_string)
    end_us = int((time.time() if now_s is None else now_s) * 1e6) + 1
    start_us = end_us - LOOKBACKS[params["lookback"]] * 1_000_000
    level = params["level"]
    raw = sources.analytics(lambda a: a.dependencies(start_us, end_us, level))
    windows = sorted({e.window_s for e in raw})
    chosen = _window_s(params["window"])
    if chosen is not None:  # streaming (short windows) or batch (long ones), as chosen
        raw = [e for e in raw if e.window_s == chosen]
    edges = merge_edges(raw, params["service"])
    rows = [
        {"caller": e.caller, "callee": e.callee, "calls": e.calls, "errors": e.errors,
         "error_rate": e.error_rate, "p99_ms": round(e.p99_ms, 3),
         "traces": f"[traces](/?service={e.callee_service}&lookback={params['lookback']}"
                   + (f"&operation={e.method}" if e.method else "") + ")"}
        for e in edges
    ]  # fmt: skip
    return {"figure": graph_figure(edges), "rows": rows, "windows": windows, "params": params}


def paths_view(sources: Sources, query_string: str, now_s: float | None = None) -> dict:
    """The call paths and critical-path shares for a query string, summed over its windows."""
    params = _params(query_string)
    end_us = int((time.time() if now_s is None else now_s) * 1e6) + 1
    start_us = end_us - LOOKBACKS[params["lookback"]] * 1_000_000
    chosen, service = _window_s(params["window"]), params["service"]

    def read(a: Any) -> tuple[list, list]:
        return a.paths(start_us, end_us), a.critical_shares(start_us, end_us)

    paths, shares = sources.analytics(read)
    paths = [p for p in paths if chosen is None or p.window_s == chosen]
    shares = [s for s in shares if chosen is None or s.window_s == chosen]
    by_path: dict[str, tuple[int, int]] = {}
    for p in paths:
        if not service or service in p.services:
            calls, errors = by_path.get(p.text, (0, 0))
            by_path[p.text] = (calls + p.calls, errors + p.errors)
    ranked = sorted(by_path.items(), key=lambda item: (-item[1][0], item[0]))
    path_rows = [{"path": text, "calls": c, "errors": e} for text, (c, e) in ranked]
    by_service: dict[str, tuple[float, int]] = {}
    for sh in shares:
        ms, traces = by_service.get(sh.service, (0.0, 0))
        by_service[sh.service] = (ms + sh.critical_ms, traces + sh.traces)
    everything = sum(ms for ms, _ in by_service.values())
    ordered = sorted(by_service.items(), key=lambda item: (-item[1][0], item[0]))
    critical_rows = [
        {"service": name, "critical_ms": round(ms, 3), "traces": traces,
         "share": round(ms / everything, 4) if everything else 0.0}
        for name, (ms, traces) in ordered if not service or name == service
    ]  # fmt: skip
    return {"paths": path_rows[:MAX_PATHS], "critical": critical_rows}


def layout(**url: Any) -> html.Div:
    params = _params(url)
    return html.Div(
        [
            dcc.Location(id="deps-nav", refresh="callback-nav"),
            dcc.Store(id="deps-params", data=_query_string(params)),
            html.Div(
                [
                    field(
                        "lookback",
                        dcc.Dropdown(
                            id="deps-lookback",
                            options=list(LOOKBACKS),
                            value=params["lookback"],
                            clearable=False,
                        ),
                    ),
                    field(
                        "level",
                        dcc.RadioItems(
                            id="deps-level",
                            options=list(LEVELS),
                            value=params["level"],
                            inline=True,
                        ),
                    ),
                    field(
                        "window",
                        dcc.Dropdown(
                            id="deps-window",
                            value=params["window"] or None,
                            options=[params["window"]] if params["window"] else [],
                            placeholder="every window",
                        ),
                    ),
                    field(
                        "service",
                        dcc.Input(
                            id="deps-service",
                            value=params["service"],
                            type="text",
                            placeholder="all services",
                            debounce=True,
                        ),
                    ),
                ],
                className="search-form",
            ),
            html.Div(id="deps-message"),
            html.P(id="deps-caption", className="caption"),
            dcc.Graph(id="deps-graph", config={"displaylogo": False}),
            dag.AgGrid(
                id="deps-table",
                columnDefs=_COLUMNS,
                rowData=[],
                columnSize="responsiveSizeToFit",
                className="ag-theme-quartz",
                dashGridOptions={
                    "pagination": True,
                    "paginationPageSize": 20,
                    "domLayout": "autoHeight",
                },
            ),
            html.H3("Call paths (indirect dependencies)"),
            _grid("deps-paths", _PATH_COLUMNS),
            html.H3("Critical-path share per service"),
            _grid("deps-critical", _CRITICAL_COLUMNS),
        ],
        className="page dependencies",
    )


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""

    @app.callback(
        Output("deps-graph", "figure"),
        Output("deps-table", "rowData"),
        Output("deps-caption", "children"),
        Output("deps-message", "children"),
        Output("deps-window", "options"),
        Input("deps-params", "data"),
    )
    def show(query_string: str | None) -> tuple[Any, ...]:
        try:
            view = edges_view(sources, query_string or "")
        except EXPECTED as err:
            return {"data": [], "layout": {"height": 120}}, [], "", problem(err), no_update
        rows, windows = view["rows"], view["windows"]
        options = [{"label": f"{w:g} s windows", "value": f"{w:g}"} for w in windows]
        if not rows:
            return view["figure"], [], "", _nothing(view["params"]), options
        chosen = view["params"]["window"]
        shown = [f"{float(chosen):g} s"] if chosen else [f"{w:g} s" for w in windows]
        caption = (f"{len(rows)} {view['params']['level']} edges from windows of "
                   + ", ".join(shown))  # fmt: skip
        return view["figure"], rows, caption, "", options

    @app.callback(
        Output("deps-paths", "rowData"),
        Output("deps-critical", "rowData"),
        Input("deps-params", "data"),
    )
    def trace_results(query_string: str | None) -> tuple[Any, ...]:
        try:
            view = paths_view(sources, query_string or "")
        except EXPECTED:
            return [], []  # the graph's callback says what is wrong
        return view["paths"], view["critical"]

    @app.callback(
        Output("deps-nav", "href"),
        Input("deps-lookback", "value"),
        Input("deps-level", "value"),
        Input("deps-service", "value"),
        Input("deps-window", "value"),
        Input("deps-graph", "clickData"),
        State("deps-params", "data"),
        prevent_initial_call=True,
    )
    def navigate(lookback, level, service, window, click, current) -> Any:
        params = {"lookback": lookback or "1h", "level": level or "service",
                  "service": (service or "").strip(), "window": window or ""}  # fmt: skip
        if ctx.triggered_id == "deps-graph":
            points = (click or {}).get("points") or []
            if not points:
                return no_update
            params["service"] = points[0].get("customdata") or ""
        wanted = _query_string(_params(params))
        return no_update if wanted == current else f"{PATH}{wanted}"

    return SimpleNamespace(show=show, navigate=navigate, trace_results=trace_results)


def _nothing(params: dict[str, str]) -> html.P:
    where = f" touching {params['service']}" if params["service"] else ""
    return html.P(
        f"No {params['level']} edges{where} in the last {params['lookback']}: the pipeline's "
        "dependency job writes them (callscope pipeline)."
    )


def _grid(grid_id: str, columns: list[dict[str, Any]]) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id, columnDefs=columns, rowData=[], columnSize="responsiveSizeToFit",
        className="ag-theme-quartz",
        dashGridOptions={"pagination": True, "paginationPageSize": 10, "domLayout": "autoHeight"},
    )  # fmt: skip
