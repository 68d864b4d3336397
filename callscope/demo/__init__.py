"""``callscope demo``: the whole loop in separate processes on this machine.

``loadgen → gateway → orders → {inventory, payment x3 → ledger}`` under governance (the
registry, failover, an adaptive balancer), traced into the spool (or Kafka), filed by the
collector into SQLite (or Elasticsearch), browsed in the dashboard -- with faults switched
on at a time offset. Modules: ``topology`` (who calls whom), ``services`` and ``load``
(the processes), ``faults``, ``backends`` (embedded or real stack), ``processes`` (process
groups), ``observe`` (store, weights), ``progress``, ``supervisor`` and ``summary``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from .._shell import activate_command, callscope_command
from . import feedback, load, loop_processes, services
from .backends import embedded, real
from .faults import parse_fault
from .feedback import DEFAULT_WINDOW_S, feedback_available
from .summary import print_newest_trace, print_summary, summarize
from .supervisor import DemoFailed, Options, Supervisor, default_fault_at
from .topology import LOADGEN

__all__ = ["register", "run_demo"]

DEFAULT_SLOW = "payment#2=200ms"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole loop: services under load, tracing, collector, dashboard, faults",
        description="A shop of services in separate processes (gateway -> orders -> "
        "{inventory, payment x3 -> ledger}) under load, traced into a store, with the "
        "dashboard and faults at time offsets. Runs until Ctrl-C, or --duration S; prints "
        "a summary as its last line (JSON).",
    )
    p.add_argument("--duration", type=_seconds, metavar="S",
                   help="run S seconds unattended, then stop and summarize "
                   "(default: until Ctrl-C)")  # fmt: skip
    p.add_argument("--qps", type=load.qps, default=20.0, help="checkouts a second (default 20)")
    p.add_argument("--slow", action="append", default=[], metavar="INSTANCE=DELAY[@TIME]",
                   help=f"slow an instance down, e.g. {DEFAULT_SLOW}@20s (the default fault, at "
                   "a third of --duration, or 20 s)")  # fmt: skip
    p.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="INSTANCE=RATE%[@TIME]",
        help="make an instance fail a share of its calls, e.g. payment#3=30%%@30s",
    )
    p.add_argument(
        "--crash",
        action="append",
        default=[],
        metavar="INSTANCE[@TIME]",
        help="kill an instance's process, e.g. payment#1@40s",
    )
    p.add_argument(
        "--heal",
        action="append",
        default=[],
        metavar="INSTANCE[@TIME]",
        help="lift an instance's slowdown and failures, e.g. payment#2@60s (the dashboard's "
        "Faults page does all of these while the demo runs)",
    )
    p.add_argument("--no-faults", action="store_true", help="no default slowdown")
    p.add_argument("--balancer",
                   help="the consumers' balancer (default: round_robin when the weights are "
                   "fed back, so they move the traffic; else p2c, adaptive)")  # fmt: skip
    p.add_argument(
        "--no-feedback",
        action="store_true",
        help="no weight feedback (the pipeline's Spark job; needs Java and pyspark)",
    )
    p.add_argument("--window", type=_window, default=DEFAULT_WINDOW_S, metavar="S",
                   help=f"the feedback's window (default {DEFAULT_WINDOW_S} s)")  # fmt: skip
    p.add_argument("--stack", choices=("embedded", "real"), default="embedded",
                   help="embedded (spool, SQLite, embedded registry; default) or real "
                   "(Kafka, Elasticsearch, ZooKeeper from `callscope stack`)")  # fmt: skip
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    p.add_argument(
        "--dashboard-port",
        type=int,
        default=8050,
        help="the dashboard's port on 127.0.0.1 (default 8050; 0: any free)",
    )
    p.add_argument("--workdir", help="where logs, spool and store go (kept; default: a "
                   "temporary directory, removed at the end unless --keep)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.set_defaults(handler=run_demo)
    services.register(sub)
    load.register(sub)
    feedback.register(sub)
    loop_processes.register(sub)


def _seconds(text: str) -> float:
    value = float(text)
    if not 10 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"between 10 and 86400 seconds, not {text}")
    return value


def _window(text: str) -> int:
    value = int(text)
    if not 5 <= value <= 300:
        raise argparse.ArgumentTypeError(f"between 5 and 300 seconds, not {text}")
    return value


def _options(args: argparse.Namespace) -> Options:
    faults = [parse_fault(kind, text) for kind in ("slow", "fail", "crash")
              for text in getattr(args, kind)]  # fmt: skip
    if not faults and not args.no_faults:
        faults.append(parse_fault("slow", DEFAULT_SLOW))
    faults += [parse_fault("heal", text) for text in args.heal]
    if not 0 <= args.dashboard_port <= 65535:
        raise ValueError(f"--dashboard-port is within 0..65535, not {args.dashboard_port}")
    for fault in faults:
        at = fault.at_s if fault.at_s is not None else default_fault_at(args.duration)
        if args.duration is not None and at >= args.duration:
            raise ValueError(f"the fault on {fault.instance.label} at {at:g} s comes after "
                             f"--duration {args.duration:g}")  # fmt: skip
    feedback = not args.no_feedback and feedback_available() is None
    balancer = args.balancer or ("round_robin" if feedback else "p2c")
    return Options(args.duration, args.qps, faults, balancer, not args.no_dashboard,
                   args.dashboard_port, feedback, args.window)  # fmt: skip


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does


def run_demo(args: argparse.Namespace) -> int:
    """Start, watch, stop, summarize; the working directory goes unless kept."""
    from rpc import get_balancer

    options = _options(args)
    get_balancer(options.balancer)  # a wrong name fails here, before a process starts
    keep = args.keep or args.workdir is not None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="callscope-demo-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    for chatty in ("kazoo", "elastic_transport", "kafka"):  # the real stack's clients
        logging.getLogger(chatty).setLevel(logging.WARNING)
    supervisor = None
    print(f"callscope demo: working in {workdir}" + ("" if keep else " (removed at the end)"))
    try:
        backends = embedded(workdir) if args.stack == "embedded" else real(workdir)
        supervisor = Supervisor(options, backends, workdir)
        try:
            supervisor.start()
            print(f"load       {options.qps:g} checkouts/s; Ctrl-C stops", flush=True)
            supervisor.watch()
        except KeyboardInterrupt:
            print("\ncallscope demo: stopping every process ...", flush=True)
        finally:
            supervisor.stop()
        summary = summarize(supervisor)
        print_newest_trace(backends.store_url)
        _remove(supervisor, keep)
        _closing_hint(backends.store_url, keep)
        print_summary(summary)
        return 0
    except DemoFailed as err:
        print(f"callscope demo: {err}", file=sys.stderr)
        return 1
    finally:
        if supervisor is not None:
            supervisor.stop()
            _remove(supervisor, keep)
        signal.signal(signal.SIGTERM, previous)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _remove(supervisor: Supervisor, keep: bool) -> None:
    """What the run made on the real services goes too, unless kept (once)."""
    if keep or supervisor.removed:
        return
    supervisor.removed = True
    for failure in supervisor.backends.remove():
        print(f"callscope demo: could not remove the run's {failure}", file=sys.stderr)


def _closing_hint(store_url: str, kept: bool) -> None:
    command = callscope_command()
    if kept:
        print(f"\nthe spans are in {store_url}; browse them with")
        print(f"  {command} traces --store {store_url} --service {LOADGEN}")
        print(f"  {command} services --store {store_url}")
        print(f"  {command} alarms --store {store_url}")
        print(f"  {command} dashboard --store {store_url}")
    else:
        print(f"\nthe demo's files are removed; `{command} demo --keep` keeps them to browse "
              f"with `{command} traces`")  # fmt: skip
    if command != "callscope":
        print(f"(or activate the environment, `{activate_command()}`, and type `callscope`)")
