"""KPI recorder: windows, histogram quantiles, in-flight across windows, process stats."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

import rpc
from instrument import (
    LATENCY_BOUNDS_MS,
    ClientTracing,
    ExportPipeline,
    KpiRecorder,
    MemoryExporter,
    ProcessStats,
    Resource,
    SpoolEntry,
    TracerProvider,
    get_sampler,
    quantile,
)


def test_quantiles_interpolate_within_buckets() -> None:
    bounds = (1.0, 2.0, 5.0)
    assert quantile([0, 0, 0, 0], bounds, 0.5) == 0.0
    assert quantile([10, 0, 0, 0], bounds, 0.5) == pytest.approx(0.5)
    assert quantile([0, 10, 0, 0], bounds, 0.99) == pytest.approx(1.99)
    # the open bucket is capped by the largest value seen
    assert quantile([0, 0, 0, 4], bounds, 0.99, max_ms=9.0) <= 9.0
    assert quantile([50, 50, 0, 0], bounds, 0.95) == pytest.approx(1.9)


def test_windows_reset_counts_but_keep_in_flight() -> None:
    rec = KpiRecorder("app", "h:1")
    slow = rec.begin("S", "p:1", "m", "consumer")
    for ms in (0.3, 0.7, 3.0, 40.0):
        rec.end(rec.begin("S", "p:1", "m", "consumer"), ms / 1000, error=ms > 10)
    (sample,) = rec.collect({"cpu_percent": 12.5, "rss_bytes": 1000})
    assert (sample.count, sample.errors, sample.in_flight) == (4, 1, 1)
    assert sample.latency_ms["buckets"] == {"0.5": 1, "1": 1, "5": 1, "50": 1}
    assert sample.latency_ms["max"] == pytest.approx(40.0)
    assert sample.cpu_percent == 12.5 and sample.rss_bytes == 1000 and sample.app == "app"
    (sample,) = rec.collect()
    assert (sample.count, sample.in_flight) == (0, 1)  # still reported: a call is running
    rec.end(slow, 0.002, error=False)
    (sample,) = rec.collect()
    assert (sample.count, sample.in_flight) == (1, 0)
    assert rec.collect() == []  # idle keys are forgotten


def test_bucket_labels_match_bounds() -> None:
    rec = KpiRecorder("a", "i")
    rec.end(rec.begin("S", "i", "m", "provider"), 100.0, error=False)  # 100 s: the +Inf bucket
    (sample,) = rec.collect()
    assert sample.latency_ms["buckets"] == {"+Inf": 1}
    assert len(LATENCY_BOUNDS_MS) == len(set(LATENCY_BOUNDS_MS))


def test_process_stats_read_psutil_and_gc() -> None:
    stats = ProcessStats()
    reading = stats.read()
    assert reading["rss_bytes"] > 0  # type: ignore[operator]
    sample = stats.sample("app", "h:1", 1, 10.0, {"dropped": 3}, reading)
    assert sample.role == "process" and sample.counters == {"dropped": 3}
    assert sample.gc_collections["gen0"] >= 0


def _calls(interceptor: Any, n: int, fail_every: int = 0) -> None:
    async def ok(inv: rpc.Invocation) -> str:
        return "done"

    async def broken(inv: rpc.Invocation) -> str:
        raise rpc.RpcError("nope")

    async def run() -> None:
        for i in range(n):
            inv = rpc.Invocation("svc.S", "m", [], peer="10.0.0.1:7000")
            failing = bool(fail_every) and i % fail_every == 0
            with contextlib.suppress(rpc.RpcError):
                await interceptor(inv, broken if failing else ok)

    asyncio.run(run())


@pytest.mark.parametrize("sampler", ["always_on", "always_off"])
def test_interceptor_kpis_are_exact_whatever_the_queue_and_sampling(sampler: str) -> None:
    """Calls that went well close their KPI counters on the export thread; a full queue
    or an unsampled trace must not lose a call from the counts."""
    gate = threading.Event()

    class Stuck(MemoryExporter):
        def export(self, records: Sequence[SpoolEntry]) -> Sequence[SpoolEntry]:
            gate.wait(10)
            return super().export(records)

    recorder = KpiRecorder("app", "h:1")
    exporter = Stuck()
    pipeline = ExportPipeline(exporter, queue_size=50, batch_size=10, recorder=recorder)
    provider = TracerProvider(Resource("app", "h:1", "h"), pipeline, get_sampler(sampler))
    client = ClientTracing(provider, recorder)
    _calls(client, 10)  # the export thread takes some and blocks on the gate
    time.sleep(0.1)
    _calls(client, 290, fail_every=10)
    gate.set()
    assert pipeline.force_flush()
    (sample,) = [s for s in recorder.collect() if s.role == "consumer"]
    assert (sample.count, sample.errors, sample.in_flight) == (300, 29, 0)
    assert sum(sample.latency_ms["buckets"].values()) == 300
    exported = len(exporter.spans())
    if sampler == "always_on":
        assert pipeline.counters["dropped_queue_full"] == 300 - exported > 0
    else:  # only the errors are exported; the rest went through the queue for their KPIs
        assert exported + pipeline.counters["dropped_queue_full"] == 29
    pipeline.shutdown()
