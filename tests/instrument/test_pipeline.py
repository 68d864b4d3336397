"""The export pipeline: never blocks, spools while the exporter is down, replays in order,
counts every drop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from instrument import (
    ExportPipeline,
    KpiRecorder,
    MemoryExporter,
    ProcessStats,
    Resource,
    Spool,
    SpoolEntry,
    TracerProvider,
)


class Flaky(MemoryExporter):
    """Delivers while ``up``; otherwise returns everything as undelivered."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True
        self.calls = 0

    def export(self, records: Sequence[SpoolEntry]) -> Sequence[SpoolEntry]:
        self.calls += 1
        if not self.up:
            return records
        return super().export(records)


def make(
    exporter: MemoryExporter, spool: Spool | None = None, **options: object
) -> tuple[ExportPipeline, TracerProvider]:
    options.setdefault("flush_interval_s", 0.02)
    pipeline = ExportPipeline(exporter, spool=spool, **options)  # type: ignore[arg-type]
    return pipeline, TracerProvider(Resource("svc", "i", "h"), pipeline)


def emit(provider: TracerProvider, start: int, stop: int) -> None:
    for i in range(start, stop):
        provider.start_span(f"op-{i}", "INTERNAL", None).end()


def wait_until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_outage_spools_then_replays_everything_in_order(tmp_path: Path) -> None:
    exporter = Flaky()
    pipeline, provider = make(exporter, Spool(tmp_path))
    emit(provider, 0, 300)
    assert pipeline.force_flush()
    exporter.up = False
    emit(provider, 300, 700)
    assert pipeline.force_flush()
    assert pipeline.counters["spooled"] == 400
    emit(provider, 700, 800)  # while the backlog exists, new spans queue behind it
    assert pipeline.force_flush()
    exporter.up = True
    wait_until(lambda: not pipeline.spool.pending())  # type: ignore[union-attr]
    emit(provider, 800, 900)
    assert pipeline.force_flush()
    names = [s.name for s in exporter.spans()]
    assert names == [f"op-{i}" for i in range(900)]  # every span, once, in order
    assert pipeline.counters["dropped"] == 0
    assert pipeline.counters["replayed"] == 500
    pipeline.shutdown()


class RefusesEveryOther(Flaky):
    """Once, while ``half_up``: acknowledges every other record and refuses the rest, as a
    broker still electing leaders takes some partitions' records and times out others."""

    def __init__(self) -> None:
        super().__init__()
        self.half_up = False

    def export(self, records: Sequence[SpoolEntry]) -> Sequence[SpoolEntry]:
        if not self.half_up:
            return super().export(records)
        self.half_up = False
        self.calls += 1
        super().export(records[0::2])
        return records[1::2]


def test_a_partly_refused_replay_sends_each_span_once(tmp_path: Path) -> None:
    exporter = RefusesEveryOther()
    pipeline, provider = make(exporter, Spool(tmp_path))
    exporter.up = False
    emit(provider, 0, 400)
    assert pipeline.force_flush()
    assert pipeline.counters["spooled"] == 400
    exporter.up, exporter.half_up = True, True
    wait_until(lambda: not pipeline.spool.pending() and not pipeline._backlog)  # type: ignore[union-attr]
    names = [s.name for s in exporter.spans()]
    assert sorted(names) == sorted(f"op-{i}" for i in range(400))  # once each: no duplicate
    assert pipeline.counters["replayed"] == 400
    assert pipeline.counters["respooled"] == 200
    assert pipeline.counters["dropped"] == 0
    pipeline.shutdown()


def test_spool_cap_drops_are_counted_logged_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = Flaky()
    exporter.up = False
    recorder = KpiRecorder("svc", "i")
    pipeline, provider = make(
        exporter, Spool(tmp_path, max_bytes=20_000), recorder=recorder,
        process_stats=ProcessStats(),
    )  # fmt: skip
    with caplog.at_level(logging.ERROR, logger="callscope.instrument"):
        emit(provider, 0, 200)
        assert pipeline.force_flush()
        spooled = pipeline.counters["spooled"]
        assert 0 < spooled < 200
        assert pipeline.counters["dropped_spool_full"] == 200 - spooled
        pipeline.shutdown()
    assert any("dropped" in r.getMessage() for r in caplog.records)
    exporter.up = True
    replayer = Spool(tmp_path)
    process = [
        e for e in replayer.read(10_000) if e.topic == "callscope.kpis" and b'"process"' in e.value
    ]
    replayer.close()
    # the last process sample may not fit either; when it does, it carries the counters
    assert all(b'"dropped_spool_full":' in e.value for e in process)


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    gate = threading.Event()

    class Stuck(MemoryExporter):
        def export(self, records: Sequence[SpoolEntry]) -> Sequence[SpoolEntry]:
            gate.wait(10)
            return super().export(records)

    exporter = Stuck()
    pipeline, provider = make(exporter, queue_size=100, batch_size=10)
    emit(provider, 0, 10)  # the export thread takes these and blocks on the gate
    time.sleep(0.1)
    started = time.perf_counter()
    emit(provider, 10, 1010)
    assert time.perf_counter() - started < 1.0  # the caller never waits for the exporter
    gate.set()
    assert pipeline.force_flush()
    delivered = len(exporter.spans())
    assert pipeline.counters["dropped_queue_full"] == 1010 - delivered
    assert delivered >= 100
    pipeline.shutdown()


def test_unsampled_spans_are_not_queued_but_errors_are() -> None:
    from instrument import get_sampler

    exporter = MemoryExporter()
    pipeline = ExportPipeline(exporter, flush_interval_s=0.02)
    provider = TracerProvider(Resource("svc", "i", "h"), pipeline, get_sampler("always_off"))
    provider.start_span("quiet", "INTERNAL", None).end()
    failing = provider.start_span("loud", "INTERNAL", None)
    failing.fail("TIMEOUT", "slow")
    failing.end()
    assert pipeline.force_flush()
    assert [s.name for s in exporter.spans()] == ["loud"]
    pipeline.shutdown()
