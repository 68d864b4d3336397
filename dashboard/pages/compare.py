"""Compare: two traces' structures merged on their operation paths, as Jaeger's trace
comparison shows them; a path found in one trace only, or more often in one, is marked.

``/compare?a=<trace id>&b=<trace id>``.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from storage import DiffNode, compare_traces, summary_line

from .._form import field
from .._problem import EXPECTED, problem
from .._sources import Sources
from .trace import load_trace

__all__ = ["NAME", "PATH", "comparison", "layout", "register"]

PATH = "/compare"
NAME = "Compare"

_STATE_TEXT = {
    "same": "",
    "only-a": "only in A",
    "only-b": "only in B",
    "more-a": "more in A",
    "more-b": "more in B",
}


def layout(a: str = "", b: str = "", **_url: Any) -> html.Div:
    return html.Div(
        [
            dcc.Location(id="compare-nav", refresh="callback-nav"),
            dcc.Store(id="compare-ids", data={"a": a, "b": b}),
            html.Div(
                [
                    field(
                        "A",
                        dcc.Input(id="compare-a", value=a, type="text", className="trace-id-input"),
                    ),
                    field(
                        "B",
                        dcc.Input(id="compare-b", value=b, type="text", className="trace-id-input"),
                    ),
                    html.Button("Compare", id="compare-go", className="primary"),
                ],
                className="search-form",
            ),
            html.Div(
                [
                    html.Span(text, className=f"legend diff-{state}")
                    for state, text in _STATE_TEXT.items()
                    if text
                ],
                className="legend-bar",
            ),
            html.Div(id="compare-result"),
        ],
        className="page compare",
    )


def comparison(sources: Sources, a: str, b: str) -> html.Div:
    """The two traces' summaries and their merged tree, each path marked by its state."""
    trace_a, trace_b = load_trace(sources, a), load_trace(sources, b)
    nodes = compare_traces(trace_a, trace_b)
    differing = sum(n.state != "same" for n in nodes)
    header = html.Ul([
        html.Li(["A ", dcc.Link(summary_line(trace_a.summary()), href=f"/trace/{a}")]),
        html.Li(["B ", dcc.Link(summary_line(trace_b.summary()), href=f"/trace/{b}")]),
    ])  # fmt: skip
    table = html.Table(
        [html.Tr([html.Th("operation"), html.Th("A"), html.Th("B"), html.Th("")])]
        + [_diff_row(n) for n in nodes],
        className="diff",
    )
    note = html.P(f"{differing} of {len(nodes)} operation paths differ", id="compare-summary")
    return html.Div([header, note, table])


def _diff_row(node: DiffNode) -> html.Tr:
    label = f"{'    ' * node.depth}{node.service}: {node.name}"
    failed = node.errors_a or node.errors_b
    errors = f" (errors: {node.errors_a}/{node.errors_b})" if failed else ""
    return html.Tr(
        [html.Td(html.Pre(label + errors)), html.Td(node.count_a), html.Td(node.count_b),
         html.Td(_STATE_TEXT[node.state])],
        className=f"diff-row diff-{node.state}",
    )  # fmt: skip


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""

    @app.callback(Output("compare-result", "children"), Input("compare-ids", "data"))
    def show(ids: dict[str, str] | None) -> Any:
        a, b = (ids or {}).get("a", ""), (ids or {}).get("b", "")
        if not a or not b:
            return html.P("Give two trace ids to compare.")
        try:
            return comparison(sources, a, b)
        except EXPECTED as err:
            return problem(err)

    @app.callback(
        Output("compare-nav", "href"),
        Input("compare-go", "n_clicks"),
        State("compare-a", "value"),
        State("compare-b", "value"),
        prevent_initial_call=True,
    )
    def go(_clicks: int, a: str | None, b: str | None) -> Any:
        a, b = (a or "").strip().lower(), (b or "").strip().lower()
        return f"/compare?a={a}&b={b}" if a or b else no_update

    return SimpleNamespace(show=show, go=go)
