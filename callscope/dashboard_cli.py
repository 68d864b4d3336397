"""``callscope dashboard``: serve the web UI over a span store (and, later, a registry)."""

from __future__ import annotations

import argparse
import os
import sys

from .traces_cli import DEFAULT_STORE, STORE_ENV

REGISTRY_ENV = "CALLSCOPE_REGISTRY"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dashboard", help="serve the web UI: traces, waterfalls, comparisons, dependencies, KPIs"
    )
    p.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV, DEFAULT_STORE),
        help=f"span store URL (env {STORE_ENV}, default {DEFAULT_STORE})",
    )
    p.add_argument(
        "--analytics",
        default=None,
        help="analytics store URL: KPIs, dependencies, weights (default: the --store URL)",
    )
    p.add_argument(
        "--registry",
        default=os.environ.get(REGISTRY_ENV),
        help=f"registry URL for the governance pages (env {REGISTRY_ENV})",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="never write to the registry, even with a credential in --registry",
    )
    p.add_argument(
        "--demo-faults",
        metavar="DIR",
        help="add the Faults page, which asks a running `callscope demo` (whose fault "
        "directory DIR is) to slow, fail, crash or heal its instances; the demo passes it",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050; 0: any free)")
    p.set_defaults(handler=_serve)  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    from dashboard import create_app, start

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port is within 0..65535, not {args.port}")
    pages = []
    if args.demo_faults:
        from pathlib import Path

        from .demo.fault_page import fault_page

        directory = Path(args.demo_faults)
        if not directory.is_dir():
            raise ValueError(f"--demo-faults {directory}: no such directory (a running demo's "
                             "workdir has one named faults)")  # fmt: skip
        pages.append(fault_page(directory, read_only=args.read_only))
    app = create_app(
        args.store, args.registry, args.analytics, read_only=args.read_only, pages=pages
    )
    dashboard = start(app, args.host, args.port, background=False)
    print(f"callscope dashboard: {dashboard.url}  (store {args.store}; Ctrl-C stops)",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        dashboard.serve_forever()
    finally:
        dashboard.stop()
    return 0
