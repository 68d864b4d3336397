"""Trace searches on the dashboard over a store of a million spans (SQLite, the default).

1. A SQLite store is filled with ``--spans`` spans (default 1,000,000): traces of 10 spans
   from ``tests/dashboard/seed.make_trace`` spread over the last 24 h, the root tagged
   ``customer=cN``, one trace in 50 failed. Filling is batched and bounded by
   ``--fill-seconds`` (it stops early and says how many it stored); ``--db PATH`` keeps the
   store, and a later run reuses it when it holds enough spans.
2. The dashboard serves that store on 127.0.0.1 (ephemeral port), and each search below is
   POSTed to its traces-page callback exactly as the browser sends it
   (``/_dash-update-component``), ``--rounds`` times: the time until the answer (matching
   traces fetched whole, shaped for the table and the scatter) is back.
3. Peer, same run, same store: the bare storage call the callback makes
   (``SpanStore.find_traces``). ``ratio`` = dashboard / storage: what the dashboard adds.

The goal (issue 14): every search answers within 1 s. The last line is one JSON object.

    .venv/bin/python benchmarks/dashboard_search.py --db /tmp/callscope-1m.db
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import SearchParams, create_app, start  # noqa: E402
from storage import open_span_store  # noqa: E402
from tests.dashboard.seed import make_trace  # noqa: E402

DAY_US = 86_400 * 1_000_000
SEARCHES = {
    "newest 100 of a service": "?service=gateway&lookback=1d",
    "by a rare tag (1 trace)": "?service=gateway&tags=customer%3Dc{rare}&lookback=1d",
    "operation + min duration": "?service=orders&operation=orders%2Fcreate&min_ms=20&lookback=1d",
    "errors only": "?service=gateway&errors=1&lookback=7d",
    "a tag nothing has (scans the range)": "?service=gateway&tags=customer%3Dnobody&lookback=6h",
}
_OUTPUTS = [("traces-service", "options"), ("traces-results", "data"),
            ("traces-message", "children"), ("traces-older", "href"),
            ("traces-older", "className")]  # fmt: skip


def fill(url: str, spans: int, budget_s: float) -> tuple[int, float]:
    """Store up to ``spans`` spans within ``budget_s``; returns (stored, seconds)."""
    rng = random.Random(1)
    now_us = int(time.time() * 1e6)
    traces = spans // 10
    started = time.monotonic()
    with open_span_store(url) as store:
        batch = []
        for i in range(traces):
            start_us = now_us - 60_000_000 - (i * DAY_US) // traces
            batch += make_trace(rng, start_us, 10, error=i % 50 == 0,
                                attributes={"customer": f"c{i}"})  # fmt: skip
            if len(batch) >= 5000:
                store.write_spans(batch)
                batch = []
                if time.monotonic() - started > budget_s:
                    print(f"fill: stopped at the {budget_s:.0f} s budget", flush=True)
                    break
                if (i + 1) % 10_000 < 500:  # about every 100,000 spans
                    print(f"fill: {(i + 1) * 10:,} spans, {time.monotonic() - started:.0f} s",
                          flush=True)  # fmt: skip
        store.write_spans(batch)
        return store.count(), time.monotonic() - started


def callback_body(query_string: str) -> dict:
    output = "...".join(f"{c}.{p}" for c, p in _OUTPUTS)
    return {
        "output": f"..{output}..",
        "outputs": [{"id": c, "property": p} for c, p in _OUTPUTS],
        "inputs": [{"id": "traces-params", "property": "data", "value": query_string}],
        "changedPropIds": ["traces-params.data"],
        "state": [],
    }


def time_dashboard(base: str, query_string: str, rounds: int) -> tuple[list[float], int]:
    session = requests.Session()
    samples, found = [], 0
    for _ in range(rounds):
        began = time.perf_counter()
        answer = session.post(f"{base}/_dash-update-component", json=callback_body(query_string),
                              timeout=60)  # fmt: skip
        answer.raise_for_status()
        samples.append(time.perf_counter() - began)
        found = len(answer.json()["response"]["traces-results"]["data"])
    return samples, found


def time_storage(url: str, query_string: str, rounds: int) -> list[float]:
    samples = []
    with open_span_store(url, read_only=True) as store:
        for _ in range(rounds):
            query = SearchParams.from_query(query_string).to_query()
            began = time.perf_counter()
            store.find_traces(query)
            samples.append(time.perf_counter() - began)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--fill-seconds", type=float, default=600.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", default="", help="keep the store here (reused when full)")
    args = parser.parse_args()
    path = Path(args.db or f"/tmp/callscope-dashboard-bench-{os.getpid()}.db")
    url = f"sqlite://{path}"
    stored = 0
    if path.exists():
        with open_span_store(url, read_only=True) as store:
            stored = store.count()
    fill_s = 0.0
    if stored < args.spans:
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        stored, fill_s = fill(url, args.spans, args.fill_seconds)
        print(f"fill: {stored:,} spans in {fill_s:.0f} s", flush=True)
    else:
        print(f"fill: reusing {path} ({stored:,} spans)", flush=True)
    rare = (stored // 10) // 3  # a trace a third of the way back
    dashboard = start(create_app(url))
    results = {}
    try:
        for name, template in SEARCHES.items():
            query_string = template.format(rare=rare)
            time_dashboard(dashboard.url, query_string, 1)  # warm the page cache
            ours, found = time_dashboard(dashboard.url, query_string, args.rounds)
            peer = time_storage(url, query_string, args.rounds)
            ours_s, peer_s = statistics.median(ours), statistics.median(peer)
            row = {
                "query": query_string, "traces": found, "dashboard_median_s": round(ours_s, 4),
                "dashboard_max_s": round(max(ours), 4), "storage_median_s": round(peer_s, 4),
                "ratio": round(ours_s / peer_s, 2),
            }  # fmt: skip
            results[name] = row
            print(f"{name:38} {found:4} traces  dashboard {row['dashboard_median_s']:.3f} s "
                  f"(max {row['dashboard_max_s']:.3f})  storage {row['storage_median_s']:.3f} s "
                  f"ratio {row['ratio']:.2f}", flush=True)  # fmt: skip
    finally:
        dashboard.stop()
        if not args.db:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
    worst = max(r["dashboard_max_s"] for r in results.values())
    print(json.dumps({"stored_spans": stored, "fill_s": round(fill_s, 1),
                      "worst_search_s": worst, "goal_s": 1.0, "met": worst <= 1.0,
                      "load_1m": os.getloadavg()[0], "searches": results}))  # fmt: skip


if __name__ == "__main__":
    main()
