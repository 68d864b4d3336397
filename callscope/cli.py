"""``callscope``: one sub-command per module; each parses options and calls a package API.

A command registered without ``help=`` is internal (a process the demo starts, say): it
runs, but ``callscope --help`` does not list it (argparse 3.11 would print a hidden
command as ``==SUPPRESS==``; one without help never enters the listing).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any, NoReturn

import rpc

from ._hints import hint_for

# Modules exposing ``register(subparsers)``; each adds its sub-commands, in this order
# in ``callscope --help``.
COMMAND_MODULES = (
    "callscope.demo",
    "callscope.run",
    "callscope.registry_cli",
    "callscope.degrade_cli",
    "callscope.quota_cli",
    "callscope.collector_cli",
    "callscope.spool_cli",
    "callscope.traces_cli",
    "callscope.dashboard_cli",
    "callscope.services_cli",
    "callscope.pipeline_cli",
    "callscope.alarms_cli",
    "callscope.bench_cli",
    "callscope.stack.cli",
)

EPILOG = (
    "Commands run from the activated virtual environment (`. .venv/bin/activate`) or as "
    "`.venv/bin/callscope ...`. `callscope COMMAND --help` describes a command's options. "
    "Documentation: README.md and docs/architecture.md."
)


def version() -> str:
    """The installed distribution's version (what ``pip show callscope`` says)."""
    try:
        return metadata.version("callscope")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed; run `make demo` or `pip install -e .`)"


class _OneLineHelp(argparse.HelpFormatter):
    """Wide enough that every command's help stays on one line."""

    def __init__(self, prog: str) -> None:
        width = max(120, shutil.get_terminal_size().columns)
        super().__init__(prog, max_help_position=24, width=width)


class _Parser(argparse.ArgumentParser):
    """Usage errors end with what to do next, not only what was wrong."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _OneLineHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument COMMAND: invalid choice"):  # its list names internal ones
            message = message.split(" (choose from", 1)[0].replace("argument COMMAND: ", "")
            message = message.replace("invalid choice", "unknown command")
        self.print_usage(sys.stderr)
        hint = f"run `{self.prog} --help` for the commands and options"
        self.exit(2, f"{self.prog}: error: {message}\n{self.prog}: {hint}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="callscope",
        description="RPC with service governance, call-chain tracing and analytics.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"callscope {version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
        print(f"callscope {args.command}: see `callscope {args.command} --help`", file=sys.stderr)
        return 2
    except rpc.RpcError as err:  # escaped a command: only registries answer the CLI over rpc
        print(f"callscope {args.command}: {err.code}: {err.message}", file=sys.stderr)
        print(f"callscope {args.command}: {hint_for(err.code, args, 'registry')}", file=sys.stderr)
        return 1
    except Exception as err:
        from storage import StorageError

        if not isinstance(err, StorageError):
            raise
        # a store URL or store that a long-running command (collector, ...) cannot use
        print(f"callscope {args.command}: {err.code}: {err}", file=sys.stderr)
        print(f"callscope {args.command}: {hint_for(err.code, args)}", file=sys.stderr)
        return 2
