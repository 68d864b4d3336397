"""Trace: one trace as a waterfall (services coloured, spans nested, errors, events and
the critical path marked), the detail of the span clicked, and folding of subtrees.

``/trace/<id>``; ``?span=<span id>`` opens that span's detail. Each callback reads the
trace from the store by id (one keyed read), so nothing large travels to the browser
but the figure.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from dash import Dash, Input, Output, State, ctx, dcc, html, no_update

from storage import BadQuery, Trace, span_tree, summary_line

from .._problem import EXPECTED, problem
from .._sources import Sources
from .._span_detail import span_detail
from .._waterfall import TOP_PX, waterfall
from .._waterfall_html import governance_events, waterfall_labels, waterfall_legend
from .._weight_reasons import weight_reasons

__all__ = ["NAME", "PATH_TEMPLATE", "layout", "load_trace", "register"]

PATH_TEMPLATE = "/trace/<trace_id>"
NAME = "Trace"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def load_trace(sources: Sources, trace_id: str) -> Trace:
    """The stored trace, or :class:`storage.BadQuery` saying why there is none."""
    if not _TRACE_ID.fullmatch(trace_id or ""):
        raise BadQuery(f"a trace id is 32 lowercase hex digits, not {trace_id!r}")
    trace = sources.spans(lambda store: store.get_trace(trace_id))
    if trace is None:
        raise BadQuery(f"no trace {trace_id} in {sources.store_url}")
    return trace


def layout(trace_id: str = "", span: str = "", **_url: Any) -> html.Div:
    return html.Div(
        [
            dcc.Store(id="trace-id", data=trace_id),
            dcc.Store(id="trace-collapsed", data=[]),
            dcc.Store(id="trace-selected", data=span),
            html.H2(id="trace-header", children=f"trace {trace_id}"),
            html.Div(id="trace-message"),
            html.Div(
                [
                    html.Button("collapse all", id="trace-collapse-all"),
                    html.Button("expand all", id="trace-expand-all"),
                    html.Button("collapse selected", id="trace-toggle", disabled=True),
                    dcc.Input(
                        id="trace-other",
                        placeholder="another trace id",
                        type="text",
                        debounce=False,
                        className="trace-id-input",
                    ),
                    dcc.Link("compare", id="trace-compare", href=f"/compare?a={trace_id}"),
                ],
                className="toolbar",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Div(id="trace-legend", className="wf-legend"),
                            html.Div(
                                [
                                    html.Div(
                                        id="trace-labels",
                                        className="wf-labels",
                                        style={"paddingTop": f"{TOP_PX}px"},
                                    ),
                                    dcc.Graph(
                                        id="trace-waterfall",
                                        className="wf-chart",
                                        config={"displaylogo": False},
                                    ),
                                ],
                                className="wf-grid",
                            ),
                            html.Div(id="trace-governance"),
                        ],
                        className="waterfall",
                    ),
                    html.Div(
                        id="trace-detail",
                        className="detail",
                        children=html.P("Click a span to see its detail."),
                    ),
                ],
                className="trace-body",
            ),
        ],
        className="page trace",
    )


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""

    @app.callback(
        Output("trace-waterfall", "figure"),
        Output("trace-labels", "children"),
        Output("trace-legend", "children"),
        Output("trace-header", "children"),
        Output("trace-message", "children"),
        Input("trace-id", "data"),
        Input("trace-collapsed", "data"),
        Input("trace-selected", "data"),
    )
    def render(trace_id: str, collapsed: list[str] | None, selected: str | None):
        try:
            trace = load_trace(sources, trace_id)
        except EXPECTED as err:
            empty = {"data": [], "layout": {"height": 120}}
            return empty, [], [], f"trace {trace_id}", problem(err)
        drawn = waterfall(trace, set(collapsed or []), selected or "")
        return (drawn.figure, waterfall_labels(drawn), waterfall_legend(drawn),
                summary_line(trace.summary()), "")  # fmt: skip

    @app.callback(Output("trace-governance", "children"), Input("trace-id", "data"))
    def decisions(trace_id: str) -> Any:
        try:
            trace = load_trace(sources, trace_id)
            return governance_events(trace, weight_reasons(sources, trace))
        except EXPECTED:
            return ""  # render already says why there is no trace

    @app.callback(
        Output("trace-selected", "data"),
        Input("trace-waterfall", "clickData"),
        prevent_initial_call=True,
    )
    def select(click: dict | None) -> Any:
        for point in (click or {}).get("points") or []:
            if isinstance(point.get("customdata"), str):
                return point["customdata"]
        return no_update

    @app.callback(
        Output("trace-detail", "children"),
        Output("trace-toggle", "disabled"),
        Output("trace-toggle", "children"),
        Input("trace-selected", "data"),
        Input("trace-collapsed", "data"),
        State("trace-id", "data"),
    )
    def detail(selected: str | None, collapsed: list[str] | None, trace_id: str):
        if not selected:
            return no_update, True, "collapse selected"
        try:
            trace = load_trace(sources, trace_id)
        except EXPECTED as err:
            return problem(err), True, "collapse selected"
        node = next((n for n in span_tree(trace) if n.span.span_id == selected), None)
        if node is None:
            return html.P(f"no span {selected} in this trace"), True, "collapse selected"
        folded = selected in (collapsed or [])
        label = "expand selected" if folded else "collapse selected"
        return span_detail(node.span, trace.start_us), not node.children, label

    @app.callback(
        Output("trace-collapsed", "data"),
        Input("trace-toggle", "n_clicks"),
        Input("trace-collapse-all", "n_clicks"),
        Input("trace-expand-all", "n_clicks"),
        State("trace-selected", "data"),
        State("trace-collapsed", "data"),
        State("trace-id", "data"),
        prevent_initial_call=True,
    )
    def fold(_toggle, _all, _none, selected: str | None, collapsed: list[str] | None,
             trace_id: str):  # fmt: skip
        if ctx.triggered_id == "trace-expand-all":
            return []
        if ctx.triggered_id == "trace-toggle":
            return toggled(collapsed or [], selected or "")
        try:
            trace = load_trace(sources, trace_id)
        except EXPECTED:
            return no_update
        return collapse_all(trace)

    @app.callback(
        Output("trace-compare", "href"),
        Input("trace-other", "value"),
        State("trace-id", "data"),
    )
    def compare_link(other: str | None, trace_id: str) -> str:
        other = (other or "").strip().lower()
        return f"/compare?a={trace_id}" + (f"&b={other}" if other else "")

    return SimpleNamespace(
        render=render,
        decisions=decisions,
        select=select,
        detail=detail,
        fold=fold,
        compare_link=compare_link,
    )


def toggled(collapsed: list[str], span_id: str) -> list[str]:
    """``collapsed`` with ``span_id`` folded if it was open, opened if it was folded."""
    if not span_id:
        return collapsed
    if span_id in collapsed:
        return [s for s in collapsed if s != span_id]
    return [*collapsed, span_id]


def collapse_all(trace: Trace) -> list[str]:
    """Fold every span below the top level that has children: roots and their calls show."""
    return [n.span.span_id for n in span_tree(trace) if n.depth >= 1 and n.children]
