"""Traces: search stored traces (service, operation, tags, duration, time, errors), see
their durations over time (drag a box to pick, click to open), and a sortable table.

The search lives in the URL (``?service=orders&tags=zone%3Da``): the layout is rebuilt
from it, so a link reproduces the view. One search is one bounded store query
(``limit`` traces); "older" pages on by time, never by scanning.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import dash_ag_grid as dag
from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from .._form import field
from .._problem import EXPECTED, problem
from .._scatter import scatter_figure
from .._search import LIMITS, LOOKBACKS, SearchParams, format_utc
from .._sources import Sources

__all__ = ["NAME", "PATH", "layout", "register", "search"]

PATH = "/"
NAME = "Traces"

_COLUMNS = [
    {"field": "started", "headerName": "started (UTC)", "sort": "desc", "minWidth": 190},
    {"field": "root", "headerName": "root operation", "cellRenderer": "markdown",
     "linkTarget": "_self", "minWidth": 260, "flex": 2},
    {"field": "services", "flex": 2},
    {"field": "spans", "type": "numericColumn", "maxWidth": 100},
    {"field": "duration_ms", "headerName": "duration (ms)", "type": "numericColumn",
     "maxWidth": 150, "valueFormatter": {"function": "d3.format('.3f')(params.value)"}},
    {"field": "errors", "type": "numericColumn", "maxWidth": 100,
     "cellClassRules": {"cell-error": "params.value > 0"}},
]  # fmt: skip


def search(sources: Sources, query_string: str) -> dict[str, Any]:
    """Run the search a query string names; what the page shows of it, as data.

    Keys: ``services`` (for the picker), ``rows`` (one per trace, newest first),
    ``older`` (the next page's query string, or None when this page was not full).
    """
    params = SearchParams.from_query(query_string)
    services = sources.spans(lambda store: store.services())
    if not params.service:
        return {"services": services, "rows": [], "older": None}
    query = params.to_query()
    traces = sources.spans(lambda store: store.find_traces(query))
    rows = [_row(t.summary()) for t in traces]
    older = None
    if len(traces) >= query.limit:
        older = params.older(min(r["start_us"] for r in rows)).query_string()
    return {"services": services, "rows": rows, "older": older}


def _row(summary: Any) -> dict[str, Any]:
    root = f"{summary.root_service}: {summary.root_name}"
    return {
        "trace_id": summary.trace_id,
        "start_us": summary.start_us,
        "started": format_utc(summary.start_us)[:-3],
        "root": f"[{root}](/trace/{summary.trace_id})",
        "root_text": root,
        "services": ", ".join(summary.services),
        "spans": summary.span_count,
        "duration_ms": summary.duration_us / 1000,
        "errors": summary.error_count,
    }


def layout(**url: Any) -> html.Div:
    params = SearchParams.from_query(url)
    return html.Div(
        [
            dcc.Location(id="traces-nav", refresh="callback-nav"),
            dcc.Store(id="traces-params", data=params.query_string()),
            dcc.Store(id="traces-results"),
            html.Div(
                [
                    field(
                        "service",
                        dcc.Dropdown(
                            id="traces-service",
                            value=params.service or None,
                            options=[params.service] if params.service else [],
                            clearable=False,
                            placeholder="service",
                        ),
                    ),
                    field(
                        "operation",
                        dcc.Dropdown(
                            id="traces-operation",
                            value=params.operation or None,
                            placeholder="any operation",
                            options=[params.operation] if params.operation else [],
                        ),
                    ),
                    field(
                        "tags",
                        dcc.Input(
                            id="traces-tags",
                            value=params.tags,
                            debounce=True,
                            placeholder="zone=a http.status=500",
                            type="text",
                        ),
                    ),
                    field(
                        "min ms",
                        dcc.Input(
                            id="traces-min-ms",
                            value=params.min_ms,
                            type="text",
                            inputMode="numeric",
                            placeholder="0",
                        ),
                    ),
                    field(
                        "max ms",
                        dcc.Input(
                            id="traces-max-ms",
                            value=params.max_ms,
                            type="text",
                            inputMode="numeric",
                            placeholder="no limit",
                        ),
                    ),
                    field(
                        "lookback",
                        dcc.Dropdown(
                            id="traces-lookback",
                            value=params.lookback,
                            options=[*LOOKBACKS, "custom"],
                            clearable=False,
                        ),
                    ),
                    field(
                        "from (UTC)",
                        dcc.Input(
                            id="traces-start",
                            value=params.start,
                            placeholder="2026-11-30 10:00",
                            type="text",
                        ),
                    ),
                    field(
                        "to (UTC)",
                        dcc.Input(
                            id="traces-end",
                            value=params.end,
                            placeholder="2026-11-30 11:00",
                            type="text",
                        ),
                    ),
                    field(
                        "limit",
                        dcc.Dropdown(
                            id="traces-limit",
                            value=params.limit,
                            options=list(LIMITS),
                            clearable=False,
                        ),
                    ),
                    dcc.Checklist(
                        id="traces-errors",
                        options=[{"label": "errors only", "value": "1"}],
                        value=["1"] if params.errors else [],
                    ),
                    html.Button("Search", id="traces-search", className="primary"),
                ],
                className="search-form",
            ),
            html.Div(id="traces-message"),
            dcc.Loading(
                dcc.Graph(
                    id="traces-scatter", config={"displaylogo": False}, figure=scatter_figure([])
                )
            ),
            html.Div(
                [
                    html.Span(id="traces-caption", className="caption"),
                    dcc.Link(
                        "compare the 2 selected",
                        id="traces-compare",
                        href="/compare",
                        className="disabled",
                    ),
                    dcc.Link("older results", id="traces-older", href="/", className="disabled"),
                ],
                className="results-bar",
            ),
            dag.AgGrid(
                id="traces-table",
                columnDefs=_COLUMNS,
                rowData=[],
                getRowId="params.data.trace_id",
                columnSize="responsiveSizeToFit",
                dashGridOptions={
                    "pagination": True,
                    "paginationPageSize": 20,
                    "rowSelection": {"mode": "multiRow"},
                    "domLayout": "autoHeight",
                    "animateRows": False,
                },
                className="ag-theme-quartz",
            ),
        ],
        className="page traces",
    )


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""

    @app.callback(
        Output("traces-service", "options"),
        Output("traces-results", "data"),
        Output("traces-message", "children"),
        Output("traces-older", "href"),
        Output("traces-older", "className"),
        Input("traces-params", "data"),
    )
    def run_search(query_string: str | None) -> tuple[Any, ...]:
        try:
            found = search(sources, query_string or "")
        except EXPECTED as err:
            return no_update, [], problem(err), "/", "disabled"
        message = "" if found["rows"] else _nothing_found(query_string or "")
        older = found["older"]
        return (found["services"], found["rows"], message, f"/{older}" if older else "/",
                "" if older else "disabled")  # fmt: skip

    @app.callback(Output("traces-operation", "options"), Input("traces-service", "value"))
    def operations(service: str | None) -> list[str]:
        if not service:
            return []
        try:
            return sources.spans(lambda store: store.operations(service))
        except EXPECTED:
            return []  # run_search already says the store is down

    @app.callback(
        Output("traces-nav", "href"),
        Output("traces-params", "data"),
        Input("traces-search", "n_clicks"),
        Input("traces-tags", "n_submit"),
        Input("traces-scatter", "clickData"),
        State("traces-service", "value"),
        State("traces-operation", "value"),
        State("traces-tags", "value"),
        State("traces-min-ms", "value"),
        State("traces-max-ms", "value"),
        State("traces-lookback", "value"),
        State("traces-start", "value"),
        State("traces-end", "value"),
        State("traces-limit", "value"),
        State("traces-errors", "value"),
        State("traces-params", "data"),
        prevent_initial_call=True,
    )
    def navigate(_clicks, _submit, click, service, operation, tags, min_ms, max_ms, lookback,
                 start, end, limit, errors, current):  # fmt: skip
        if ctx.triggered_id == "traces-scatter":
            points = (click or {}).get("points") or []
            if not points:
                return no_update, no_update
            return f"/trace/{points[0]['customdata']}", no_update
        wanted = SearchParams.from_query({
            "service": service or "", "operation": operation or "", "tags": tags or "",
            "min_ms": min_ms or "", "max_ms": max_ms or "", "lookback": lookback or "1h",
            "start": start or "", "end": end or "", "limit": str(limit or 100),
            "errors": "1" if errors else "",
        }).query_string()  # fmt: skip
        if wanted == (current or ""):
            return no_update, wanted  # the same search again: rerun it in place
        return f"/{wanted}", no_update

    @app.callback(Output("traces-scatter", "figure"), Input("traces-results", "data"))
    def scatter(rows: list[dict[str, Any]] | None) -> Any:
        return scatter_figure(rows or [])

    @app.callback(
        Output("traces-table", "rowData"),
        Output("traces-caption", "children"),
        Input("traces-results", "data"),
        Input("traces-scatter", "selectedData"),
    )
    def table(rows: list[dict[str, Any]] | None, selected: dict | None) -> tuple[Any, str]:
        return picked_rows(rows or [], selected)

    @app.callback(
        Output("traces-compare", "href"),
        Output("traces-compare", "className"),
        Input("traces-table", "selectedRows"),
    )
    def compare(selected: list[dict[str, Any]] | None) -> tuple[str, str]:
        ids = [r["trace_id"] for r in selected or []]
        if len(ids) != 2:
            return "/compare", "disabled"
        return f"/compare?a={ids[0]}&b={ids[1]}", ""

    return SimpleNamespace(
        run_search=run_search,
        operations=operations,
        navigate=navigate,
        scatter=scatter,
        table=table,
        compare=compare,
    )


def picked_rows(rows: list[dict[str, Any]], selected: dict | None) -> tuple[list, str]:
    """The table's rows: all results, or those a box drawn on the scatter holds."""
    points = (selected or {}).get("points")
    if points is None:
        return rows, f"{len(rows)} trace{'' if len(rows) == 1 else 's'}"
    ids = {p.get("customdata") for p in points}
    kept = [r for r in rows if r["trace_id"] in ids]
    return kept, f"{len(kept)} of {len(rows)} traces selected on the chart"


def _nothing_found(query_string: str) -> str:
    params = SearchParams.from_query(query_string)
    if not params.service:
        return "Choose a service and search."
    return "No trace matches this search."
