"""``callscope run -- cmd ...``: run a Python program traced, without touching its code.

The command replaces this process (``exec``), as ``opentelemetry-instrument`` and
``ddtrace-run`` do: a supervisor's SIGTERM, a terminal's SIGINT or a SIGHUP reach the
program itself, and its exit status (or the signal that ended it) is the one the
supervisor sees. A wrapper process waiting on a child would have to forward each signal
and could exit while its child runs on.
"""

from __future__ import annotations

import argparse
import os
import sys

from callscope_contract import environment as env
from instrument import launch_environment


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a Python command with tracing and KPIs on (as `import instrument.auto`)",
        description="Every Python process the command starts imports instrument.auto; "
        "options set the matching CALLSCOPE_* variables.",
    )
    p.add_argument("--service-name", help=f"sets {env.CALLSCOPE_SERVICE_NAME}")
    p.add_argument("--kafka", metavar="BOOTSTRAP", help=f"sets {env.CALLSCOPE_KAFKA_BOOTSTRAP}")
    p.add_argument("--sample-ratio", type=float, help=f"sets {env.CALLSCOPE_SAMPLE_RATIO}")
    p.add_argument("--spool-dir", help=f"sets {env.CALLSCOPE_SPOOL_DIR}")
    p.add_argument("--exporter", help=f"sets {env.CALLSCOPE_EXPORTER}")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("callscope run: give a command after --, e.g. callscope run -- python app.py",
              file=sys.stderr)  # fmt: skip
        return 2
    settings = {
        env.CALLSCOPE_SERVICE_NAME: args.service_name,
        env.CALLSCOPE_KAFKA_BOOTSTRAP: args.kafka,
        env.CALLSCOPE_SAMPLE_RATIO: None if args.sample_ratio is None else str(args.sample_ratio),
        env.CALLSCOPE_SPOOL_DIR: args.spool_dir,
        env.CALLSCOPE_EXPORTER: args.exporter,
    }
    environ = launch_environment(os.environ, settings)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(cmd[0], cmd, environ)  # returns only when the command cannot start
    except FileNotFoundError:
        print(f"callscope run: command not found: {cmd[0]}", file=sys.stderr)
        return 127
    except OSError as err:  # not executable, a directory...: the shell's 126
        print(f"callscope run: cannot run {cmd[0]}: {err.strerror}", file=sys.stderr)
        return 126
