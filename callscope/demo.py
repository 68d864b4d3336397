"""``callscope demo``: a provider and a consumer in two processes, calls printed with latencies."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import rpc
from callscope_contract import environment

from ._shell import activate_command, callscope_command

if TYPE_CHECKING:
    from storage import AnalyticsStore


@dataclass
class Order:
    item: str
    quantity: int


@dataclass
class Receipt:
    order_id: int
    item: str
    total_cents: int


@rpc.service("demo.Shop", version="1.0")
class Shop:
    """A tiny provider: sync and async methods, a dataclass API, an error path."""

    def __init__(self) -> None:
        self._next_id = 1

    def price(self, item: str) -> int:
        prices = {"tea": 350, "coffee": 420, "cake": 500}
        if item not in prices:
            raise rpc.NotFoundError(f"no such item {item!r}")
        return prices[item]

    async def order(self, order: Order) -> Receipt:
        await asyncio.sleep(0.001)  # pretend to talk to a database
        receipt = Receipt(self._next_id, order.item, self.price(order.item) * order.quantity)
        self._next_id += 1
        return receipt


class ShopApi:
    """The consumer's typed view of the service."""

    def price(self, item: str) -> int:
        raise NotImplementedError  # a proxy answers; this only states the signature

    def order(self, order: Order) -> Receipt:
        raise NotImplementedError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a provider and a consumer, trace the calls, show a trace")
    p.add_argument("--calls", type=_positive_int, default=20, help="calls the consumer makes")
    p.add_argument("--workdir", help="where the spool and the SQLite store go (kept; default: "
                   "a temporary directory, removed at the end unless --keep)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.set_defaults(handler=run_demo)
    p = sub.add_parser("demo-provider")  # internal: no help, so not listed
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(handler=run_provider)


def _positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"between 1 and 1000000, not {value}")
    return value


def run_provider(args: argparse.Namespace) -> int:
    import instrument.auto  # noqa: F401 - traced through the CALLSCOPE_* variables it was given

    server = rpc.Server("127.0.0.1", args.port)
    server.export(Shop())
    server.run(ready=lambda address: print(address, flush=True))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Provider and consumer, traced to the local spool; the collector files the spans
    into SQLite; the newest trace is printed: the whole loop on embedded defaults.

    A temporary working directory is removed at the end (even on Ctrl-C) unless ``--keep``;
    a ``--workdir`` the user named is always kept."""
    keep = args.keep or args.workdir is not None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="callscope-demo-"))
    try:
        code = _run_in(workdir, args.calls)
        if code == 0:
            _closing_hint(workdir, keep)
        return code
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def _run_in(workdir: Path, calls: int) -> int:
    spool = workdir / "spool"
    embedded = {environment.CALLSCOPE_SPOOL_DIR: str(spool), "PYTHONUNBUFFERED": "1"}
    base_env = {k: v for k, v in os.environ.items() if k != environment.CALLSCOPE_KAFKA_BOOTSTRAP}
    print(f"callscope demo: working in {workdir}; starting a provider process ...", flush=True)
    provider = subprocess.Popen(
        [sys.executable, "-m", "callscope", "demo-provider"],
        stdout=subprocess.PIPE,
        text=True,
        env={**base_env, **embedded, environment.CALLSCOPE_SERVICE_NAME: "demo-provider"},
    )
    try:
        assert provider.stdout is not None
        address = provider.stdout.readline().strip()
        if not address:
            msg = "the provider process did not start; its error is printed above"
            print(f"callscope demo: {msg}", file=sys.stderr)
            return 1
        os.environ.pop(environment.CALLSCOPE_KAFKA_BOOTSTRAP, None)
        os.environ.update({**embedded, environment.CALLSCOPE_SERVICE_NAME: "demo-consumer"})
        import instrument.auto

        print(f"provider pid {provider.pid} serving demo.Shop on {address}")
        print(f"consumer pid {os.getpid()} calling it {calls} times:\n")
        _call_the_shop(address, calls)
        if instrument.auto.instrumentation is not None:  # the consumer is done: its spans
            instrument.auto.instrumentation.shutdown()  # and last KPI window, spooled now
    finally:
        provider.terminate()  # a graceful stop: it drains, then flushes its spans at exit
        provider.wait(timeout=15)
    return _collect_and_show(workdir, expected_spans=2 * calls)


def _closing_hint(workdir: Path, kept: bool) -> None:
    command = callscope_command()
    url = f"sqlite://{workdir / 'spans.db'}"
    if kept:
        print(f"\nspans and KPIs are in {workdir / 'spans.db'} (SQLite); browse them with")
        print(f"  {command} traces --store {url} --service demo-consumer")
        print(f"  {command} services --store {url}")
        print(f"  {command} kpis --store {url} --service demo-consumer --since 1h")
    else:
        print(f"\nthe demo's files are removed; `{command} demo --keep` keeps them to browse with "
              f"`{command} traces`")  # fmt: skip
    if command != "callscope":
        print(f"(or activate the environment, `{activate_command()}`, and type `callscope`)")


def _call_the_shop(address: str, calls: int) -> None:
    latencies = []
    with rpc.Client([address], timeout=5.0) as client:
        shop = client.proxy("demo.Shop", ShopApi, version="1.0")
        items = ["tea", "coffee", "cake", "scones"]
        for i in range(calls):
            item = items[i % len(items)]
            start = time.perf_counter()
            result: object
            try:
                if i % 2:
                    result = shop.order(Order(item, 1 + i % 3))
                    what = f"order({item!r}, {1 + i % 3})"
                else:
                    result = shop.price(item)
                    what = f"price({item!r})"
                outcome = f"-> {result}"
            except rpc.RpcError as err:
                what, outcome = f"call for {item!r}", f"!! {err.code}: {err.message}"
            ms = (time.perf_counter() - start) * 1000
            latencies.append(ms)
            print(f"  #{i + 1:<3} {ms:7.3f} ms  {what} {outcome}")
    print(
        f"\n{len(latencies)} calls; latency p50 {statistics.median(latencies):.3f} ms, "
        f"max {max(latencies):.3f} ms"
    )


def _both_roles(analytics: AnalyticsStore) -> bool:
    roles = {s.role for s in analytics.kpis("demo.Shop", 0, int(time.time() * 1e6) + 1)}
    return {"provider", "consumer"} <= roles


def _collect_and_show(workdir: Path, expected_spans: int) -> int:
    from tqdm import tqdm

    from collector import Collector, CollectorConfig
    from storage import TraceQuery, open_analytics_store, open_span_store, tree_lines

    url = f"sqlite://{workdir / 'spans.db'}"
    print(f"\ncollector: spool -> {url} ...", flush=True)
    collector = Collector(
        CollectorConfig(
            store_url=url,
            spool_dir=str(workdir / "spool"),
            dlq_file=str(workdir / "dlq.jsonl"),
            http_port=None,
            otlp=False,
        )
    ).start()
    with open_span_store(url) as store, open_analytics_store(url) as analytics:
        try:
            with tqdm(total=expected_spans, desc="spans stored", unit="span", disable=None) as bar:
                deadline = time.monotonic() + 30
                while (stored := store.count()) < expected_spans and time.monotonic() < deadline:
                    bar.update(stored - bar.n)
                    time.sleep(0.2)
                bar.update(stored - bar.n)
            while not _both_roles(analytics) and time.monotonic() < deadline:
                time.sleep(0.2)  # the KPI windows both processes closed at exit
        finally:
            collector.stop()
        print(f"collector: {store.count()} spans stored (expected {expected_spans})")
        traces = store.find_traces(TraceQuery("demo-consumer", limit=1))
    if not traces:
        print("callscope demo: no trace was stored; the collector's log above says why",
              file=sys.stderr)  # fmt: skip
        return 1
    trace = traces[0]
    print(f"\nnewest trace {trace.trace_id}, {trace.duration_us / 1000:.3f} ms:")
    for line in tree_lines(trace):
        print(f"  {line}")
    return 0
