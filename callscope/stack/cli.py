"""``callscope stack up|status|env|down``: parse options, call ``callscope.stack.Stack``."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable

from callscope.stack.errors import StackError
from callscope.stack.services import SERVICES
from callscope.stack.stack import Stack, to_stderr


def register(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser(
        "stack",
        help="run Kafka, Elasticsearch, HBase and ZooKeeper locally, without Docker",
        description="Real services on 127.0.0.1 from Maven Central jars; "
        "state in $CALLSCOPE_STACK_DIR (default ~/.cache/callscope/stack).",
    )
    actions = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    names = {"nargs": "*", "metavar": "SERVICE",
             "help": f"any of {', '.join(SERVICES)} (default: all)"}  # fmt: skip

    up = actions.add_parser("up", help="fetch (once), start and wait until ready")
    up.add_argument("services", **names)
    up.add_argument("--timeout", type=float, help="seconds to wait for each service")
    up.set_defaults(handler=_up)

    fetch = actions.add_parser("fetch", help="only download the distributions (once)")
    fetch.add_argument("services", **names)
    fetch.set_defaults(handler=_fetch)

    status = actions.add_parser("status", help="state, PIDs and memory of each service")
    status.add_argument("services", **names)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)

    env = actions.add_parser("env", help="print endpoints as shell variables (eval-able)")
    env.add_argument("services", **names)
    env.set_defaults(handler=_env)

    down = actions.add_parser("down", help="stop the services started by `up`")
    down.add_argument("services", **names)
    down.add_argument("--purge", action="store_true", help="also delete their data and logs")
    down.set_defaults(handler=_down)


def _guard(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Print a ``StackError`` as one clear message (plus log tail) and exit 1."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except StackError as err:
            to_stderr(f"callscope stack: {err}\n")
            return 1

    return handler


@_guard
def _up(args: argparse.Namespace) -> int:
    results = Stack(timeout_s=args.timeout).up(args.services, pin=True)
    started = [f"{r.name} {r.seconds:.1f} s" for r in results if r.started]
    to_stderr(f"stack: up ({', '.join(started) or 'nothing to start'})\n")
    return 0


@_guard
def _fetch(args: argparse.Namespace) -> int:
    for name, home in Stack().fetch(args.services).items():
        to_stderr(f"stack: {name} in {home}\n")
    return 0


@_guard
def _status(args: argparse.Namespace) -> int:
    stack = Stack()
    statuses = stack.status(args.services)
    if args.json:
        doc = {"run_dir": str(stack.paths.run), "services": [s.to_dict() for s in statuses]}
        print(json.dumps(doc, indent=2))
    else:
        for s in statuses:
            pids = " ".join(f"{p.name}={p.pid}" for p in s.processes if p.alive) or "-"
            rss = sum(p.rss_bytes for p in s.processes) / 2**20
            port = next(iter(s.ports.values()))
            print(f"{s.name:<14}{s.state:<10}{s.version:<9}port {port:<6}{pids:<28}"
                  f"rss {rss:6.0f} MiB  {s.detail if not s.ready else ''}")  # fmt: skip
    return 0 if all(s.state in ("running", "external") for s in statuses) else 3


@_guard
def _env(args: argparse.Namespace) -> int:
    for key, value in Stack().env(args.services).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


@_guard
def _down(args: argparse.Namespace) -> int:
    Stack().down(args.services, purge=args.purge)
    return 0
