"""Governance: a service's providers (static weights and metadata), the pipeline's weights
with their history and reasons beside the latency that caused them, its breakers and
degraded calls over the last day (from the KPIs' counters, read-only), and the governance
documents in force (routing, weights, limits, breakers, masks), which can be edited.

``/governance?service=orders.OrderService``. An edit is parsed as JSON, checked with the
registry's own validation, and written with compare-and-set on the version it was loaded
at. Writing needs the credential the dashboard was started with (a token in
``--registry``); without one, or with ``--read-only``, the page only reads.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, dcc, html, no_update

from rpc import RpcError
from rpc.registry import validate_document

from .._degradation import degradation_rows, degradation_table
from .._form import field, query_text
from .._problem import EXPECTED, problem
from .._sources import Sources, shown_url
from .._weights_chart import weights_figure

__all__ = ["NAME", "PATH", "layout", "register", "save_rule"]

PATH = "/governance"
NAME = "Governance"
HISTORY_S = 86_400


def _rules_prefix(service: str) -> str:
    return f"governance/{service}/"


def _providers_table(instances: list[Any]) -> Any:
    if not instances:
        return html.P("No provider registered.", className="empty")
    header = html.Tr([html.Th(h) for h in ("address", "version", "group", "static weight",
                                              "metadata")])  # fmt: skip
    rows = [
        html.Tr([html.Td(i.address), html.Td(i.version), html.Td(i.group or "-"),
                 html.Td(i.weight), html.Td(json.dumps(i.metadata, sort_keys=True))])
        for i in instances
    ]  # fmt: skip
    return html.Table([header, *rows], className="top providers")


def _rules_table(documents: list[Any]) -> Any:
    if not documents:
        return html.P("No governance document for this service.", className="empty")
    header = html.Tr([html.Th("key"), html.Th("version"), html.Th("value")])
    rows = [
        html.Tr([html.Td(d.key), html.Td(d.version),
                 html.Td(html.Pre(json.dumps(d.value, indent=1, sort_keys=True)))])
        for d in documents
    ]  # fmt: skip
    return html.Table([header, *rows], className="top rules")


def save_rule(sources: Sources, key: str, text: str, version: int | None) -> str:
    """Validate and write one document; the sentence to show (raises what the page shows
    as a problem: a bad document, a refused credential, a lost compare-and-set)."""
    if not sources.can_write:
        raise PermissionError(
            "read-only: start the dashboard with a registry URL carrying a write token "
            "(callscope://TOKEN@host:port) and without --read-only to edit rules"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the rule is not JSON: {err}") from None
    validate_document(key, value)  # BAD_REQUEST before anything is sent
    written = sources.registry(lambda r: r.put_config(key, value, expected=version),
                               writing=True)  # fmt: skip
    return f"saved {written.key}, version {written.version}"


def layout(service: str = "", **_url: Any) -> html.Div:
    service = query_text({"service": service})["service"]
    return html.Div(
        [
            dcc.Location(id="gov-nav", refresh="callback-nav"),
            dcc.Store(id="gov-service", data=service),
            dcc.Store(id="gov-version"),
            html.Div(
                [
                    field(
                        "service",
                        dcc.Dropdown(
                            id="gov-pick",
                            value=service or None,
                            options=[service] if service else [],
                            placeholder="service",
                        ),
                    )
                ],
                className="search-form",
            ),
            html.Div(id="gov-mode", className="caption"),
            html.Div(id="gov-message"),
            html.H3("Providers"),
            html.Div(id="gov-providers"),
            html.H3("Routing weights over the last day, beside p99 (why traffic moved)"),
            dcc.Graph(id="gov-weights", config={"displaylogo": False}),
            html.H3("Breakers and degraded calls over the last day"),
            html.Div(id="gov-breakers"),
            html.H3("Governance documents in force"),
            html.Div(id="gov-rules"),
            html.H3("Edit a document"),
            html.Div(
                [
                    dcc.Input(
                        id="gov-key",
                        type="text",
                        className="trace-id-input",
                        value=f"{_rules_prefix(service)}routing" if service else "",
                    ),
                    html.Button("load", id="gov-load"),
                    html.Button("validate and save", id="gov-save", className="primary"),
                ],
                className="toolbar",
            ),
            dcc.Textarea(id="gov-text", className="rule-editor", value=""),
            html.Div(id="gov-result", role="status"),
        ],
        className="page governance",
    )


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""

    @app.callback(
        Output("gov-pick", "options"),
        Output("gov-providers", "children"),
        Output("gov-rules", "children"),
        Output("gov-weights", "figure"),
        Output("gov-mode", "children"),
        Output("gov-message", "children"),
        Output("gov-save", "disabled"),
        Input("gov-service", "data"),
    )
    def show(service: str | None) -> tuple[Any, ...]:
        mode = (f"registry {shown_url(sources.registry_url or '')}: "
                + ("edits are sent with the credential given; the registry decides"
                   if sources.can_write else "read-only"))  # fmt: skip
        empty = {"data": [], "layout": {"height": 120}}
        try:
            services = sources.registry(lambda r: r.services())
            if not service:
                return services, "", "", empty, mode, "Choose a service.", True
            providers = sources.registry(lambda r: r.lookup(service))
            rules = sources.registry(lambda r: r.list_config(_rules_prefix(service)))
            end_us = int(time.time() * 1e6) + 1
            start_us = end_us - HISTORY_S * 1_000_000
            changes = sources.analytics(lambda a: a.weights(service, start_us, end_us))
            samples = sources.analytics(lambda a: a.kpis(service, start_us, end_us,
                                                         role="provider"))  # fmt: skip
        except EXPECTED as err:
            return [], "", "", empty, mode, problem(err), True
        figure = weights_figure(changes, samples)
        return (services, _providers_table(providers), _rules_table(rules), figure, mode, "",
                not sources.can_write)  # fmt: skip

    @app.callback(Output("gov-breakers", "children"), Input("gov-service", "data"))
    def breakers(service: str | None) -> Any:
        if not service:
            return ""
        end_us = int(time.time() * 1e6) + 1
        start_us = end_us - HISTORY_S * 1_000_000
        try:
            samples = sources.analytics(lambda a: a.kpis(service, start_us, end_us))
        except EXPECTED as err:
            return problem(err)
        return degradation_table(degradation_rows(samples))

    @app.callback(
        Output("gov-nav", "href"),
        Input("gov-pick", "value"),
        State("gov-service", "data"),
        prevent_initial_call=True,
    )
    def navigate(picked: str | None, current: str | None) -> Any:
        if (picked or "") == (current or ""):
            return no_update
        return f"{PATH}?{urlencode({'service': picked})}" if picked else PATH

    @app.callback(
        Output("gov-text", "value"),
        Output("gov-version", "data"),
        Output("gov-result", "children", allow_duplicate=True),
        Input("gov-load", "n_clicks"),
        State("gov-key", "value"),
        prevent_initial_call=True,
    )
    def load(_clicks: int, key: str | None) -> tuple[Any, ...]:
        try:
            document = sources.registry(lambda r: r.get_config(key or ""))
        except EXPECTED as err:
            return no_update, None, problem(err)
        if document is None:
            return "{}", None, f"{key} does not exist yet: saving creates it"
        return (json.dumps(document.value, indent=2, sort_keys=True), document.version,
                f"loaded {key}, version {document.version}")  # fmt: skip

    @app.callback(
        Output("gov-result", "children"),
        Output("gov-service", "data"),
        Input("gov-save", "n_clicks"),
        State("gov-key", "value"),
        State("gov-text", "value"),
        State("gov-version", "data"),
        State("gov-service", "data"),
        prevent_initial_call=True,
    )
    def save(_clicks: int, key: str | None, text: str | None, version: int | None,
             service: str | None) -> tuple[Any, ...]:  # fmt: skip
        try:
            saved = save_rule(sources, key or "", text or "", version)
        except (PermissionError, ValueError) as err:
            code = "PERMISSION_DENIED" if isinstance(err, PermissionError) else "BAD_REQUEST"
            return html.Div([html.Strong(f"{code}: "), str(err)], className="problem",
                            role="alert"), no_update  # fmt: skip
        except (RpcError, *EXPECTED) as err:
            return problem(err), no_update
        return saved, service  # rewriting the service store reloads the documents

    return SimpleNamespace(show=show, breakers=breakers, navigate=navigate, load=load, save=save)
