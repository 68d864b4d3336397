"""The Dash app: one process, pages registered by module, callbacks bound to this app's
:class:`Sources`, served by a threaded WSGI server on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash
from dash import Dash, dcc, html
from werkzeug.serving import BaseWSGIServer, make_server

from ._sources import Sources
from .pages import alarms, compare, dependencies, governance, services, trace, traces

__all__ = ["Dashboard", "ExtraPage", "create_app", "start"]

ASSETS = Path(__file__).with_name("assets")


@dataclass(frozen=True)
class ExtraPage:
    """A page its caller adds to the nav (the demo's fault switches live with the demo,
    which may import the dashboard, not the other way round)."""

    path: str
    name: str
    layout: Callable[..., Any]
    register: Callable[[Dash, Sources], None]


def create_app(
    store_url: str,
    registry_url: str | None = None,
    analytics_url: str | None = None,
    *,
    read_only: bool = False,
    pages: Sequence[ExtraPage] = (),
) -> Dash:
    """The dashboard over the span store at ``store_url`` and the analytics store at
    ``analytics_url`` (default: the same URL); the registry is for the governance page,
    which edits rules only with the credential ``registry_url`` carries, never when
    ``read_only``. ``pages`` come last in the nav."""
    sources = Sources(store_url, registry_url, analytics_url, read_only=read_only)
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,  # each page's components exist only on that page
        title="callscope",
        update_title=None,  # type: ignore[arg-type]  # Dash documents None: no "Updating..." title
    )
    dash.register_page(traces.__name__, path=traces.PATH, name=traces.NAME,
                       layout=traces.layout, order=0)  # fmt: skip
    dash.register_page(trace.__name__, path_template=trace.PATH_TEMPLATE, name=trace.NAME,
                       layout=trace.layout, order=1)  # fmt: skip
    dash.register_page(compare.__name__, path=compare.PATH, name=compare.NAME,
                       layout=compare.layout, order=2)  # fmt: skip
    dash.register_page(dependencies.__name__, path=dependencies.PATH, name=dependencies.NAME,
                       layout=dependencies.layout, order=3)  # fmt: skip
    dash.register_page(services.__name__, path=services.PATH, name=services.NAME,
                       layout=services.layout, order=4)  # fmt: skip
    dash.register_page(governance.__name__, path=governance.PATH, name=governance.NAME,
                       layout=governance.layout, order=5)  # fmt: skip
    dash.register_page(alarms.__name__, path=alarms.PATH, name=alarms.NAME,
                       layout=alarms.layout, order=6)  # fmt: skip
    for page in (traces, trace, compare, dependencies, services, governance, alarms):
        page.register(app, sources)
    for order, extra in enumerate(pages, start=7):
        dash.register_page(extra.register.__module__, path=extra.path, name=extra.name,
                           layout=extra.layout, order=order)  # fmt: skip
        extra.register(app, sources)
    app.layout = html.Div(
        [
            html.Nav(
                [
                    html.Span("callscope", className="brand"),
                    dcc.Link("Traces", href="/"),
                    dcc.Link("Compare", href="/compare"),
                    dcc.Link("Dependencies", href="/dependencies"),
                    dcc.Link("Services", href="/services"),
                    dcc.Link("Governance", href="/governance"),
                    dcc.Link("Alarms", href="/alarms"),
                    *(dcc.Link(extra.name, href=extra.path) for extra in pages),
                    html.Span(store_url, className="store-url", title="span store"),
                ],
                className="nav",
            ),
            dash.page_container,
        ]
    )
    app.server.config["CALLSCOPE_SOURCES"] = sources
    return app


class Dashboard:
    """A dashboard being served; ``url`` is where to point a browser."""

    def __init__(self, app: Dash, server: BaseWSGIServer) -> None:
        self.app = app
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(target=server.serve_forever, name="dashboard",
                                        daemon=True)  # fmt: skip

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.app.server.config["CALLSCOPE_SOURCES"].close()


def start(app: Dash, host: str = "127.0.0.1", port: int = 0, *, background: bool = True
          ) -> Dashboard:  # fmt: skip
    """Bind ``host:port`` (0: any free port) and serve ``app`` from a thread, or, with
    ``background=False``, leave :meth:`Dashboard.serve_forever` to the caller."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server(host, port, app.server, threaded=True)
    dashboard = Dashboard(app, server)
    if background:
        dashboard._thread.start()
    return dashboard
