"""``callscope alarms``: the alarms the pipeline's rules raised, newest first, a page at a time."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import asdict

from ._table import table_lines
from .pipeline_cli import parse_time
from .traces_cli import DEFAULT_STORE, STORE_ENV, read_command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "alarms",
        help="list the alarms the pipeline's rules raised (firing, resolved)",
        description="Alarms of the analytics store whose window started in [--from, --to), "
        "newest first; --service keeps one service's. A page ends with the --cursor of the next.",
    )
    p.add_argument("--store", default=os.environ.get(STORE_ENV, DEFAULT_STORE),
                   help=f"analytics store (env {STORE_ENV}, default {DEFAULT_STORE})")  # fmt: skip
    p.add_argument("--service", default=None, help="only this service's alarms")
    p.add_argument("--from", "--since", dest="start", default="1d",
                   help="start: 1h (ago), an ISO time or µs (default 1d)")  # fmt: skip
    p.add_argument("--to", dest="end", default=None, help="end, exclusive (default: now)")
    p.add_argument("--limit", type=int, default=50, help="alarms per page (1..500)")
    p.add_argument("--cursor", default=None, help="the page after the one that printed it")
    p.add_argument("--json", action="store_true", help="one JSON object per alarm")
    p.set_defaults(handler=read_command(run))


def run(args: argparse.Namespace) -> int:
    from storage import open_analytics_store

    start = parse_time(args.start)
    end = parse_time(args.end) if args.end else int(time.time() * 1_000_000) + 1
    with open_analytics_store(args.store, read_only=True) as analytics:
        page = analytics.alarms(start, end, service=args.service, limit=args.limit,
                                cursor=args.cursor)  # fmt: skip
    if args.json:
        for alarm in page.alarms:
            print(json.dumps(asdict(alarm)))
    elif not page.alarms:
        print(f"callscope alarms: no alarms in {args.store} in that range", file=sys.stderr)
        return 1
    else:
        header = ("WINDOW (UTC)", "STATE", "RULE", "SCOPE", "VALUE", "THRESHOLD", "MESSAGE")
        rows = [
            (_utc(a.window_start_us), a.state, a.rule, a.where,
             "-" if a.value is None else f"{a.value:g}", f"{a.op} {a.threshold:g}", a.message)
            for a in page.alarms
        ]  # fmt: skip
        print("\n".join(table_lines(header, rows, right=[4])))
    if page.next_cursor:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


def _utc(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
