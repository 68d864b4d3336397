"""Services: for one service and time range, its top callers, the slowest methods it
serves, the slowest services overall, its health KPIs over time (calls/s, error rate,
p50/p95/p99, CPU and memory) and the routing weights the pipeline gave its instances,
with their reasons.

``/services?service=orders.OrderService&lookback=1h``. Each read is one analytics-store
query bounded by the range (KPI samples, callers and weights by service; edges by time).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, dcc, html, no_update

from .._form import query_text, service_and_lookback
from .._kpi_charts import kpi_figures
from .._problem import EXPECTED, problem
from .._search import format_utc
from .._sources import Sources

__all__ = ["NAME", "PATH", "layout", "register", "service_view"]

PATH = "/services"
NAME = "Services"
LOOKBACKS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400}
TOP = 10


def _params(query: dict[str, Any] | str) -> dict[str, str]:
    text = query_text(query)
    lookback = text.get("lookback", "1h")
    return {"service": text.get("service", "").strip(),
            "lookback": lookback if lookback in LOOKBACKS else "1h"}  # fmt: skip


def _table(header: list[str], rows: list[list[Any]], empty: str, name: str) -> html.P | html.Table:
    if not rows:
        return html.P(empty, className="empty")
    return html.Table(
        [html.Tr([html.Th(h) for h in header])]
        + [html.Tr([html.Td(c) for c in row]) for row in rows],
        className=f"top {name}",
    )


def service_view(sources: Sources, query_string: str, now_s: float | None = None) -> dict:
    """Everything the page shows for a query string, as components and figures."""
    params = _params(query_string)
    service = params["service"]
    end_us = int((time.time() if now_s is None else now_s) * 1e6) + 1
    start_us = end_us - LOOKBACKS[params["lookback"]] * 1_000_000
    edges = sources.analytics(lambda a: a.dependencies(start_us, end_us, "service"))
    slowest: dict[str, float] = {}
    for e in edges:
        slowest[e.callee] = max(slowest.get(e.callee, 0.0), e.p99_ms)
    view: dict[str, Any] = {"params": params, "slowest_services": _table(
        ["service", "worst p99 (ms)"],
        [[s, f"{p:.1f}"] for s, p in sorted(slowest.items(), key=lambda i: -i[1])[:TOP]],
        "No dependency edges in this range yet.", "slowest-services")}  # fmt: skip
    if not service:
        return view
    callers = sources.analytics(lambda a: a.top_callers(service, start_us, end_us, TOP))
    view["callers"] = _table(
        ["caller", "calls", "errors", "avg ms", "p99 ms"],
        [[c.caller, c.calls, c.errors, f"{c.avg_ms:.2f}", f"{c.p99_ms:.1f}"] for c in callers],
        f"No caller of {service} recorded in this range.",
        "callers",
    )
    methods = sources.analytics(lambda a: a.dependencies(start_us, end_us, "method"))
    worst: dict[str, float] = {}
    for e in methods:
        if e.callee == service:
            worst[e.method] = max(worst.get(e.method, 0.0), e.p99_ms)
    view["slowest_methods"] = _table(
        ["method", "worst p99 (ms)"],
        [[m, f"{p:.1f}"] for m, p in sorted(worst.items(), key=lambda i: -i[1])[:TOP]],
        f"No method-level edges into {service} in this range.",
        "slowest-methods",
    )
    samples = sources.analytics(lambda a: a.kpis(service, start_us, end_us))
    view["figures"] = kpi_figures(samples)
    view["samples"] = len(samples)
    weights = sources.analytics(lambda a: a.weights(service, start_us, end_us))
    view["weights"] = _table(
        ["time (UTC)", "instance", "weight", "reason"],
        [[format_utc(w.time_us)[:-7], w.instance, w.weight, w.reason] for w in weights[-50:]],
        f"No routing-weight change for {service} in this range.",
        "weights",
    )
    return view


def layout(**url: Any) -> html.Div:
    params = _params(url)
    graphs = [dcc.Graph(id=f"services-{name}", config={"displaylogo": False})
              for name in ("qps", "errors", "latency", "process")]  # fmt: skip
    return html.Div(
        [
            dcc.Location(id="services-nav", refresh="callback-nav"),
            dcc.Store(id="services-params", data="?" + urlencode(params)),
            service_and_lookback("services", params, LOOKBACKS, "orders.OrderService"),
            html.Div(id="services-message"),
            html.Div(
                [
                    html.Div([html.H3("Top callers"), html.Div(id="services-callers")]),
                    html.Div([html.H3("Slowest methods"), html.Div(id="services-methods")]),
                    html.Div([html.H3("Slowest services"), html.Div(id="services-slowest")]),
                ],
                className="top-n",
            ),
            html.H3(id="services-kpi-title"),
            html.Div(graphs, className="kpi-grid"),
            html.H3("Routing weights (the pipeline's, with their reasons)"),
            html.Div(id="services-weights"),
        ],
        className="page services",
    )


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""
    names = ("qps", "errors", "latency", "process")

    @app.callback(
        Output("services-callers", "children"),
        Output("services-methods", "children"),
        Output("services-slowest", "children"),
        Output("services-weights", "children"),
        Output("services-kpi-title", "children"),
        *(Output(f"services-{n}", "figure") for n in names),
        Output("services-message", "children"),
        Input("services-params", "data"),
    )
    def show(query_string: str | None) -> tuple[Any, ...]:
        empty = {"data": [], "layout": {"height": 240}}
        try:
            view = service_view(sources, query_string or "")
        except EXPECTED as err:
            return ("", "", "", "", "", *(empty for _ in names), problem(err))
        service = view["params"]["service"]
        if not service:
            pick = html.P("Choose a service to see its callers, methods, KPIs and weights.")
            return ("", "", view["slowest_services"], "", "", *(empty for _ in names), pick)
        figures = view["figures"]
        title = f"Health of {service}: {view['samples']} KPI samples"
        return (view["callers"], view["slowest_methods"], view["slowest_services"],
                view["weights"], title, *(figures[n] for n in names), "")  # fmt: skip

    @app.callback(
        Output("services-nav", "href"),
        Input("services-service", "value"),
        Input("services-lookback", "value"),
        State("services-params", "data"),
        prevent_initial_call=True,
    )
    def navigate(service: str | None, lookback: str | None, current: str | None) -> Any:
        wanted = "?" + urlencode(_params({"service": service or "", "lookback": lookback or ""}))
        return no_update if wanted == current else f"{PATH}{wanted}"

    return SimpleNamespace(show=show, navigate=navigate)
