"""``callscope services``: what a span store (services seen in traces, their operations)
or a registry (services provided now, their instances) knows."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from callscope_contract import environment
from rpc.registry import DEFAULT_PORT, REGISTRY_URL_ENV

from ._table import table_lines
from .traces_cli import DEFAULT_STORE, STORE_ENV, read_command

DEFAULT_REGISTRY = f"callscope://127.0.0.1:{DEFAULT_PORT}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "services",
        help="list the services a span store or a registry knows",
        description="Without options: the services of the span store ($CALLSCOPE_STORE or "
        f"{DEFAULT_STORE}). --registry lists a registry's providers instead (add --store "
        "for both).",
    )
    p.add_argument("--store", help=f"span store URL (default ${STORE_ENV} or {DEFAULT_STORE})")
    registry = os.environ.get(REGISTRY_URL_ENV, DEFAULT_REGISTRY)
    p.add_argument("--registry", nargs="?", const=registry, metavar="URL",
                   help=f"registry URL (alone: ${REGISTRY_URL_ENV} or the local one)")  # fmt: skip
    token = environment.CALLSCOPE_REGISTRY_TOKEN
    p.add_argument("--token", default=os.environ.get(token), help=f"or ${token}")
    p.add_argument("--json", action="store_true", help="one JSON object per service")
    p.set_defaults(handler=read_command(run))


def run(args: argparse.Namespace) -> int:
    store = args.store or (None if args.registry else os.environ.get(STORE_ENV, DEFAULT_STORE))
    found = 0
    if store:
        found += _show(args, "store", store, _store_services(store))
    if args.registry:
        found += _show(args, "registry", args.registry, _registry_services(args))
    return 0 if found else 1


def _show(args: argparse.Namespace, source: str, url: str, rows: list[dict[str, Any]]) -> int:
    if args.json:
        for row in rows:
            print(json.dumps({"source": source, "url": url, **row}))
        return len(rows)
    if not rows:
        what = "is the collector writing to it?" if source == "store" else "is anything published?"
        print(f"callscope services: no services in {source} {url}; {what}", file=sys.stderr)
        return 0
    key = "operations" if source == "store" else "instances"
    header = ("SERVICE", key.upper(), "NAMES" if source == "store" else "ADDRESSES")
    cells = [(r["service"], len(r[key]), ", ".join(r[key])) for r in rows]
    lines = table_lines(header, cells, right=[1])
    print(f"{source} {url}:")
    print("\n".join(f"  {line}" for line in lines))
    return len(rows)


def _store_services(url: str) -> list[dict[str, Any]]:
    from storage import open_span_store

    with open_span_store(url, read_only=True) as store:
        return [{"service": s, "operations": store.operations(s)} for s in store.services()]


def _registry_services(args: argparse.Namespace) -> list[dict[str, Any]]:
    from rpc.registry import connect

    options = {"token": args.token} if args.token and args.registry.startswith("callscope:") else {}
    registry = connect(args.registry, **options)
    try:
        return [
            {"service": s, "instances": [i.address for i in registry.lookup(s)]}
            for s in registry.services()
        ]
    finally:
        registry.close()
