"""A SQLite store seeded with generated traces, the dashboard serving it on an ephemeral
port of 127.0.0.1, and a real headless Chromium; screenshots go to tests/artifacts/."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callscope_contract import KpiSample, SpanRecord
from dashboard import create_app, start
from storage import (
    Alarm,
    CallerStat,
    CriticalShare,
    DependencyEdge,
    DependencyPath,
    WeightChange,
    open_analytics_store,
    open_span_store,
)
from tests.dashboard.browser import NoBrowser, open_browser
from tests.dashboard.seed import make_trace

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@dataclass
class Seeded:
    url: str
    tagged: dict[str, str]  # customer tag value -> trace id
    big: str  # a 60-span trace
    compare_a: str
    compare_b: str
    errors: list[str]


def _pair(now_us: int) -> tuple[list[SpanRecord], str, str]:
    """Two checkouts: B retried orders/create and called payments, which A did not."""
    # (name, service, parent index, span id digit); A has the first three, B all five
    shape = [("gateway/checkout", "gateway", None, "1"), ("orders/create", "orders", 0, "2"),
             ("stock/reserve", "stock", 1, "3"), ("orders/create", "orders", 0, "4"),
             ("payments/charge", "payments", 1, "5")]  # fmt: skip
    a, b = "a" * 31 + "1", "b" * 31 + "2"
    spans = []
    for trace_id, size in ((a, 3), (b, 5)):
        for i, (name, service, parent, digit) in enumerate(shape[:size]):
            spans.append(SpanRecord(
                trace_id=trace_id, span_id=digit * 16, name=name, kind="SERVER",
                parent_span_id="" if parent is None else shape[parent][3] * 16,
                service=service, start_us=now_us - 30_000_000 + 100 * i,
                duration_us=10_000 - 100 * i,
            ))  # fmt: skip
    return spans, a, b


# The topology the pipeline would have computed: gateway -> orders -> {stock, payments}.
EDGES = [
    ("gateway", "orders", 900, 9),
    ("orders", "stock", 600, 0),
    ("orders", "payments", 300, 30),
]


def _seed_analytics(url: str, now_us: int) -> None:
    window_us = 60_000_000
    edges, callers, kpis, paths, shares = [], [], [], [], []
    for w in range(3):
        start = now_us - (w + 2) * window_us
        for caller, callee, calls, errors in EDGES:
            edges.append(DependencyEdge(caller, callee, start, 60.0, calls // 3, errors // 3,
                                        p99_ms=20.0 + w, p50_ms=5.0))  # fmt: skip
            edges.append(DependencyEdge(caller, callee, start, 60.0, calls // 3, errors // 3,
                                        p99_ms=25.0 + w, method=f"{callee}/create"))  # fmt: skip
            edges.append(DependencyEdge(caller, callee, start, 60.0, calls // 3, errors // 3,
                                        p99_ms=21.0, caller_instance=f"{caller}-1",
                                        callee_instance=f"{callee}-1"))  # fmt: skip
        paths.append(DependencyPath(("gateway", "orders", "payments"), start, 60.0, 100, w))
        paths.append(DependencyPath(("gateway", "orders", "stock"), start, 60.0, 50))
        shares.append(CriticalShare("payments", start, 60.0, 600.0, 0.6, 90, 100))
        shares.append(CriticalShare("orders", start, 60.0, 400.0, 0.4, 100, 100))
        callers.append(CallerStat("orders", "gateway", start, 60.0, 300, 3, 4.0, 20.0 + w))
        callers.append(CallerStat("orders", "batch-job", start, 60.0, 50, 0, 9.0, 40.0))
        for role in ("provider", "process"):
            kpis.append(KpiSample(service="orders", instance="10.0.0.7:7001", method="create",
                                  role=role, window_start_us=start, window_s=60.0, count=300,
                                  errors=3, qps=5.0, latency_ms={"p50": 4, "p95": 12, "p99": 20},
                                  cpu_percent=30.0 + w, rss_bytes=80 * 2**20))  # fmt: skip
    weights = [WeightChange("orders", "10.0.0.7:7001", now_us - 120_000_000, 60,
                            "p99 3x the service median")]  # fmt: skip
    alarms = [  # 25 windows of alarms on orders' slow instance, one on stock
        Alarm("orders-slow", "instance", "orders", "10.0.0.7:7001", now_us - (w + 1) * 60_000_000,
              60.0, "firing" if w % 5 else "resolved", "p99_ms", ">", 15.0,
              20.0 + w if w % 5 else 9.0, f"orders @ 10.0.0.7:7001 p99 above 15 ms ({w})")
        for w in range(25)
    ] + [Alarm("stock-errors", "service", "stock", "", now_us - 90_000_000, 60.0, "firing",
               "error_rate", ">", 1.0, 2.5, "stock fails 2.5% of calls")]  # fmt: skip
    with open_analytics_store(url) as analytics:
        analytics.write_alarms(alarms)
        analytics.write_dependencies(edges)
        analytics.write_paths(paths)
        analytics.write_critical_shares(shares)
        analytics.write_top_callers(callers)
        analytics.write_kpis(kpis)
        analytics.write_weights(weights)


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    url = f"sqlite://{tmp_path_factory.mktemp('dashboard') / 'spans.db'}"
    rng = random.Random(14)
    now_us = int(time.time() * 1e6)
    spans: list[SpanRecord] = []
    tagged, errors = {}, []
    for i in range(30):
        customer = f"c{i}"
        trace = make_trace(rng, now_us - (i + 1) * 90_000_000, rng.randint(4, 12),
                           error=i % 5 == 0, attributes={"customer": customer})  # fmt: skip
        tagged[customer] = trace[0].trace_id
        if i % 5 == 0:
            errors.append(trace[0].trace_id)
        spans += trace
    big = make_trace(rng, now_us - 60_000_000, 60, error=True)
    pair, a, b = _pair(now_us)
    with open_span_store(url) as store:
        store.write_spans(spans + big + pair)
    _seed_analytics(url, now_us)
    return Seeded(url, tagged, big[0].trace_id, a, b, [*errors, big[0].trace_id])


@pytest.fixture(scope="session")
def dashboard_url(seeded: Seeded) -> Iterator[str]:
    running = start(create_app(seeded.url), "127.0.0.1", 0)
    try:
        yield running.url
    finally:
        running.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        chromium = open_browser()
    except NoBrowser as err:
        pytest.fail(str(err), pytrace=False)
    try:
        yield chromium
    finally:
        chromium.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    return ARTIFACTS


@pytest.fixture(scope="session")
def down_dashboard_url() -> Iterator[str]:
    running = start(create_app("elasticsearch://127.0.0.1:1"), "127.0.0.1", 0)  # no one there
    try:
        yield running.url
    finally:
        running.stop()
