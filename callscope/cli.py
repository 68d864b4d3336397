"""``callscope``: one sub-command per module; each parses options and calls a package API."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Modules exposing ``register(subparsers)``; each adds one sub-command.
COMMAND_MODULES = (
    "callscope.demo",
    "callscope.stack.cli",
    "callscope.registry_cli",
    "callscope.run",
    "callscope.collector_cli",
    "callscope.traces_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callscope",
        description="RPC with service governance, call-chain tracing and analytics.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError) as err:  # bad input, a file or port that is not there
        print(f"callscope {args.command}: {err}", file=sys.stderr)
        return 2
