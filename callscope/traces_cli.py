"""``callscope trace ID``, ``callscope traces --service S`` and ``callscope kpis --service S``:
read back what the collector stored.

The same store URLs as ``callscope collector`` (``--store`` or ``$CALLSCOPE_STORE``,
default ``sqlite://callscope.db``): SQLite, Elasticsearch or HBase. For ``kpis`` it is
the store the collector wrote KPI samples into (its ``--analytics``, else its ``--store``).
They open stores read-only: a missing store is "no store at ...", never created.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from callscope_contract import environment

from ._hints import hint_for
from ._shell import callscope_command
from ._table import table_lines

STORE_ENV = environment.CALLSCOPE_STORE
DEFAULT_STORE = "sqlite://callscope.db"
_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_QUANTILES = ("p50", "p95", "p99")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: argparse._SubParsersAction) -> None:
    one = sub.add_parser("trace", help="print one stored trace as a span tree")
    one.add_argument("trace_id", help="32 hex digits")
    _store_option(one)
    one.add_argument("--json", action="store_true", help="the span records, one JSON per line")
    one.set_defaults(handler=read_command(_trace))

    many = sub.add_parser("traces", help="search stored traces, newest first")
    many.add_argument("--service", required=True, help="traces with a span of this service")
    many.add_argument("--operation", default="", help="... whose span has this name")
    many.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE",
                      help="... and this attribute (repeatable)")  # fmt: skip
    many.add_argument("--min-duration-ms", type=float, help="... lasting at least this long")
    many.add_argument("--max-duration-ms", type=float, help="... lasting at most this long")
    many.add_argument("--errors", action="store_true", help="... that failed")
    many.add_argument("--since", help="... started within this much time: 30s, 15m, 2h, 1d")
    many.add_argument("--limit", type=int, default=20)
    _store_option(many)
    many.add_argument("--json", action="store_true", help="one JSON summary per line")
    many.set_defaults(handler=read_command(_traces))

    kpis = sub.add_parser("kpis", help="print the health KPI samples of a service")
    kpis.add_argument("--service", required=True,
                      help="an RPC service (payment.PaymentService) or an application, the "
                      "name `traces --service` takes (payment); says which matched")  # fmt: skip
    kpis.add_argument("--method", help="only this method")
    kpis.add_argument("--role", choices=["provider", "consumer"], help="only this side")
    kpis.add_argument("--since", default="15m", help="windows started within: 30s, 15m, 2h, 1d")
    _store_option(kpis)
    kpis.add_argument("--json", action="store_true", help="the samples, one JSON per line")
    kpis.set_defaults(handler=read_command(_kpis))


def _store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", default=os.environ.get(STORE_ENV, DEFAULT_STORE),
                   help=f"span store URL (env {STORE_ENV}, default {DEFAULT_STORE})")  # fmt: skip


# Store clients that log each request and retry (with tracebacks): heard only with -v;
# a read command says what went wrong in one line of its own.
_HINTED = ("UNAVAILABLE", "NOT_FOUND")  # the store is down, or not there: say what to do
_CHATTY_CLIENTS = ("elastic_transport", "elasticsearch", "happybase", "thriftpy2")


def read_command(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command that reads stores: a storage error is one line and exit status 2."""

    def handler(args: argparse.Namespace) -> int:
        from storage import StorageError

        if not getattr(args, "verbose", False):
            for name in _CHATTY_CLIENTS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            return run(args)
        except StorageError as err:  # a bad query, or the store is not there (ValueError: cli)
            hint = f" ({hint_for(err.code, args)})" if err.code in _HINTED else ""
            print(f"callscope {args.command}: {err}{hint}", file=sys.stderr)  # one line
            return 2

    return handler


def _trace(args: argparse.Namespace) -> int:
    from storage import open_span_store, tree_lines

    if not re.fullmatch(r"[0-9a-f]{32}", args.trace_id):
        raise ValueError(f"a trace id is 32 lowercase hex digits, not {args.trace_id!r}")
    with open_span_store(args.store, read_only=True) as store:
        trace = store.get_trace(args.trace_id)
    if trace is None:
        print(f"callscope trace: no trace {args.trace_id} in {args.store}", file=sys.stderr)
        return 1
    if args.json:
        for span in trace.spans:
            print(span.to_json().decode())
        return 0
    print(f"trace {trace.trace_id}, {len(trace.spans)} spans, {trace.duration_us / 1000:.3f} ms")
    for line in tree_lines(trace):
        print(f"  {line}")
    return 0


def _traces(args: argparse.Namespace) -> int:
    from storage import TraceQuery, open_span_store, summary_line

    query = TraceQuery(
        args.service,
        operation=args.operation,
        tags=TraceQuery.parse_tags(args.tag),
        min_duration_us=_us(args.min_duration_ms),
        max_duration_us=_us(args.max_duration_ms),
        start_min_us=_since_us(args.since),
        errors_only=args.errors,
        limit=args.limit,
    )
    with open_span_store(args.store, read_only=True) as store:
        traces = store.find_traces(query)
        known = [] if traces else store.services()
    for trace in traces:
        if args.json:
            print(json.dumps(_summary_dict(trace)))
        else:
            print(summary_line(trace.summary()))
    if not traces and not args.json:
        print(_no_traces(args.service, args.store, known), file=sys.stderr)
    return 0


def _no_traces(service: str, store: str, known: list[str]) -> str:
    """Why a search found nothing, and what to try instead."""
    if not known:
        return (f"no traces in {store}: it holds no spans yet (is `{callscope_command()} collector "
                f"--store {store}` running, and are services traced?)")  # fmt: skip
    if service not in known:
        return (f"no service {service!r} in {store}; it knows: {', '.join(known)} "
                f"(`{callscope_command()} services --store {store}`)")  # fmt: skip
    return f"no traces of {service!r} match in {store} (try fewer filters or a longer --since)"


def _kpis(args: argparse.Namespace) -> int:
    from storage import open_analytics_store

    start_us = _since_us(args.since)
    assert start_us is not None
    end_us = int(time.time() * 1e6) + 1
    only = {"method": args.method, "role": args.role}
    with open_analytics_store(args.store, read_only=True) as analytics:  # a name may be both
        of_service = analytics.kpis(args.service, start_us, end_us, **only)
        of_app = analytics.kpis(None, start_us, end_us, app=args.service, **only)
    samples = sorted(
        {s.to_json(): s for s in (*of_service, *of_app)}.values(),
        key=lambda s: (s.window_start_us, s.service, s.instance, s.method, s.role),
    )
    if not samples:
        print(f"no KPI samples of {args.service!r} (as an RPC service or an application) "
              f"since {args.since} in {args.store}", file=sys.stderr)  # fmt: skip
        return 0
    matched = _matched(args.service, of_service, of_app)
    if args.json:
        print(f"callscope kpis: {matched}", file=sys.stderr)
        for sample in samples:
            print(sample.to_json().decode())
        return 0
    print(f"{matched}, since {args.since}:")
    header = ("window (UTC)", "service", "instance", "method", "role", "calls", "errors", "qps",
              "p50 ms", "p95 ms", "p99 ms", "in-flight")  # fmt: skip
    rows = [
        (_utc(s.window_start_us), s.service, s.instance, s.method or "-", s.role, s.count,
         s.errors, f"{s.qps:.1f}", *(f"{s.latency_ms.get(q, 0):.3f}" for q in _QUANTILES),
         s.in_flight)
        for s in samples
    ]  # fmt: skip
    print("\n".join(table_lines(header, rows, right=range(5, 12))))
    return 0


def _matched(name: str, of_service: list[Any], of_app: list[Any]) -> str:
    """Which ``--service`` matched: an RPC service (its providers and consumers), an
    application (what ``traces --service`` takes: every sample it reported), or both."""
    rpc = any(s.role != "process" for s in of_service)  # a process sample's is its app's
    if rpc and of_app:
        return f"KPIs of the RPC service and of the application {name!r}"
    if of_app:
        return f"KPIs the application {name!r} reported (as in `traces --service`)"
    return f"KPIs of the RPC service {name!r} (its providers and consumers)"


def _utc(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _us(ms: float | None) -> int | None:
    if ms is None:
        return None
    if ms < 0:
        raise ValueError(f"a duration is not negative: {ms}")
    return int(ms * 1000)


def _since_us(since: str | None) -> int | None:
    if since is None:
        return None
    match = _SINCE.match(since)
    if match is None:
        raise ValueError(f"--since is a number and a unit (s, m, h, d), like 15m; not {since!r}")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    return int((time.time() - seconds) * 1e6)


def _summary_dict(trace: Any) -> dict[str, Any]:
    root = trace.root
    return {
        "trace_id": trace.trace_id,
        "start_us": trace.start_us,
        "duration_us": trace.duration_us,
        "spans": len(trace.spans),
        "root_service": root.service,
        "root_name": root.name,
        "error": trace.has_error,
    }
