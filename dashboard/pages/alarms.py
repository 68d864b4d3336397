"""Alarms: what the pipeline's alarm rules raised, newest first, with their state.

``/alarms?service=orders&lookback=1h&cursor=...``. One analytics-store read per view: a
page of at most :data:`PAGE` alarms of the range (one service's, or every service's),
newest first; "Older" follows the page's cursor, so a long history is walked a page at a
time and never read whole.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from dash import Dash, Input, Output, State, dcc, html, no_update

from storage import FIRING, AlarmPage

from .._form import query_text, service_and_lookback
from .._problem import EXPECTED, problem
from .._search import format_utc
from .._sources import Sources

__all__ = ["NAME", "PAGE", "PATH", "alarms_view", "layout", "register"]

PATH = "/alarms"
NAME = "Alarms"
PAGE = 20
LOOKBACKS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400}
HEADER = ["window (UTC)", "state", "rule", "scope", "value", "threshold", "message"]


def _params(query: dict[str, Any] | str) -> dict[str, str]:
    text = query_text(query)
    lookback = text.get("lookback", "1h")
    return {
        "service": text.get("service", "").strip(),
        "lookback": lookback if lookback in LOOKBACKS else "1h",
        "cursor": text.get("cursor", ""),
    }


def _href(params: dict[str, str], **changes: str) -> str:
    wanted = {k: v for k, v in {**params, **changes}.items() if v}
    return f"{PATH}?{urlencode(wanted)}"


def _table(page: AlarmPage) -> html.Table:
    rows = []
    for a in page.alarms:
        value = "no data" if a.value is None else f"{a.value:g}"
        cells = [format_utc(a.window_start_us)[:-7], a.state, a.rule, a.where, value,
                 f"{a.op} {a.threshold:g}", a.message]  # fmt: skip
        rows.append(html.Tr([html.Td(c) for c in cells], className=f"alarm {a.state}"))
    return html.Table([html.Tr([html.Th(h) for h in HEADER]), *rows], className="top alarms")


def alarms_view(sources: Sources, query_string: str, now_s: float | None = None) -> dict:
    """The page for a query string: its table, a summary line and the paging links."""
    params = _params(query_string)
    end_us = int((time.time() if now_s is None else now_s) * 1e6) + 1
    start_us = end_us - LOOKBACKS[params["lookback"]] * 1_000_000
    page = sources.analytics(
        lambda a: a.alarms(
            start_us,
            end_us,
            service=params["service"] or None,
            limit=PAGE,
            cursor=params["cursor"] or None,
        )
    )
    whose = params["service"] or "any service"
    if not page.alarms:
        body: Any = html.P(
            f"No alarm of {whose} in the last {params['lookback']}.", className="empty"
        )
    else:
        body = _table(page)
    firing = sum(a.state == FIRING for a in page.alarms)
    summary = f"{len(page.alarms)} alarms of {whose} on this page ({firing} firing), newest first"
    links = []
    if params["cursor"]:
        links.append(dcc.Link("Newest", href=_href(params, cursor=""), id="alarms-newest"))
    if page.next_cursor:
        links.append(
            dcc.Link("Older →", href=_href(params, cursor=page.next_cursor), id="alarms-older")
        )
    return {"params": params, "page": page, "table": body, "summary": summary, "links": links}


def layout(**url: Any) -> html.Div:
    params = _params(url)
    return html.Div(
        [
            dcc.Location(id="alarms-nav", refresh="callback-nav"),
            dcc.Store(id="alarms-params", data="?" + urlencode(params)),
            service_and_lookback("alarms", params, LOOKBACKS, "any service"),
            html.Div(id="alarms-message"),
            html.P(id="alarms-summary"),
            html.Div(id="alarms-table"),
            html.Div(id="alarms-links", className="pager"),
        ],
        className="page alarms",
    )


def register(app: Dash, sources: Sources) -> SimpleNamespace:
    """Bind this page's callbacks to ``app``; returns them by name (tests call them)."""

    @app.callback(
        Output("alarms-table", "children"),
        Output("alarms-summary", "children"),
        Output("alarms-links", "children"),
        Output("alarms-message", "children"),
        Input("alarms-params", "data"),
    )
    def show(query_string: str | None) -> tuple[Any, ...]:
        try:
            view = alarms_view(sources, query_string or "")
        except EXPECTED as err:
            return "", "", [], problem(err)
        return view["table"], view["summary"], view["links"], ""

    @app.callback(
        Output("alarms-nav", "href"),
        Input("alarms-service", "value"),
        Input("alarms-lookback", "value"),
        State("alarms-params", "data"),
        prevent_initial_call=True,
    )
    def navigate(service: str | None, lookback: str | None, current: str | None) -> Any:
        """A changed filter starts again from the newest alarms (the cursor is dropped)."""
        wanted = _params({"service": service or "", "lookback": lookback or ""})
        old = _params(current or "")
        if (wanted["service"], wanted["lookback"]) == (old["service"], old["lookback"]):
            return no_update
        return _href(wanted)

    return SimpleNamespace(show=show, navigate=navigate)
