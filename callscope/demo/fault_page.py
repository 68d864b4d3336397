"""The dashboard's Faults page, for a running demo: slow, fail, crash or heal an instance.

The page only posts requests into the demo's :class:`~callscope.demo.faults.FaultInbox`;
the supervisor applies them (as it applies ``--slow`` and the others), so a crash is its
SIGKILL and every fault lands in the run's summary. The page shows what each instance
suffers now from the files the instances themselves read. A read-only dashboard shows
the state and no form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard import ExtraPage

from .faults import KINDS, FaultInbox, fault_file, parse_fault
from .topology import instances

__all__ = ["fault_page", "request_fault"]

PATH = "/faults"
NAME = "Faults"
UNITS = {"slow": "ms of delay a call", "fail": "% of calls failing"}


def fault_page(directory: Path, *, read_only: bool = False) -> ExtraPage:
    """The page over the demo's fault directory (``--demo-faults DIR``)."""
    inbox = FaultInbox(directory)

    def layout(**_query: Any) -> html.Div:
        labels = [i.label for i in instances()]
        form: list[Any] = [
            html.P("This dashboard is read-only: it shows faults but does not switch them.",
                   className="empty"),
        ]  # fmt: skip
        if not read_only:
            form = [
                html.Div([
                    dcc.Dropdown(labels, labels[0], id="fault-instance", clearable=False),
                    dcc.RadioItems(list(KINDS), "slow", id="fault-kind", inline=True),
                    dcc.Input(id="fault-value", type="number", value=200, min=0,
                              debounce=True),
                    html.Span(UNITS["slow"], id="fault-unit"),
                    html.Button("Apply", id="fault-apply", n_clicks=0),
                ], className="fault-form"),
                html.Div(id="fault-status", role="status"),
            ]  # fmt: skip
        return html.Div(
            [
                html.H2("Faults"),
                html.P("Slow an instance down, make it fail a share of its calls, kill its "
                       "process, or heal it. The demo applies a request within a second; "
                       "watch the weights move on the Governance page."),
                *form,
                html.H3("Now"),
                html.Div(state_table(directory), id="fault-state"),
                dcc.Interval(id="fault-refresh", interval=2000),
            ],
            className="page faults",
        )  # fmt: skip

    def register(app: Dash, _sources: Any) -> None:
        app.callback(Output("fault-state", "children"), Input("fault-refresh", "n_intervals"))(
            lambda _n: state_table(directory)
        )
        if read_only:
            return
        app.callback(Output("fault-unit", "children"), Input("fault-kind", "value"))(
            lambda kind: UNITS.get(kind, "")
        )

        @app.callback(
            Output("fault-status", "children"),
            Input("fault-apply", "n_clicks"),
            State("fault-instance", "value"),
            State("fault-kind", "value"),
            State("fault-value", "value"),
            prevent_initial_call=True,
        )
        def apply(_clicks: int, label: str, kind: str, value: Any) -> Any:
            if not _clicks:
                return no_update
            return request_fault(inbox, label, kind, value)

    return ExtraPage(PATH, NAME, layout, register)


def request_fault(inbox: FaultInbox, label: str, kind: str, value: Any) -> html.Div:
    """Check one request as the command line would, post it, and say what happens next."""
    try:
        if kind not in KINDS:
            raise ValueError(f"a fault is one of {', '.join(KINDS)}, not {kind!r}")
        if kind in UNITS:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"give the {UNITS[kind]} as a number")
            spec = f"{label}={value:g}{'ms' if kind == 'slow' else '%'}"
        else:
            spec = str(label)
        fault = parse_fault(kind, spec)
        inbox.post(fault)
    except (ValueError, OSError) as err:
        return html.Div([html.Strong("BAD_REQUEST: "), str(err)], className="problem",
                        role="alert")  # fmt: skip
    return html.Div(f"Asked: {fault.describe()}. The demo applies it within a second.",
                    className="fault-asked")  # fmt: skip


def state_table(directory: Path) -> html.Table:
    rows = []
    for instance in instances():
        try:
            state = json.loads(fault_file(directory, instance).read_text())
        except (OSError, ValueError):
            state = {}
        delay = state.get("delay_ms", 0)
        rate = state.get("error_rate", 0.0)
        rows.append(html.Tr([
            html.Td(instance.label),
            html.Td(f"+{delay} ms" if delay else "-"),
            html.Td(f"{rate:.0%}" if rate else "-"),
        ]))  # fmt: skip
    header = html.Tr([html.Th("instance"), html.Th("delay"), html.Th("failing")])
    return html.Table([header, *rows], className="top fault-state")
