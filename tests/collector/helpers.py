"""Shared helpers: wait for a condition, span messages, a collector in this process."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from collector import Collector, CollectorConfig, ensure_topics

BASE_US = 1_764_150_000_000_000


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def span_json(
    service: str = "orders", i: int = 0, trace_id: str | None = None, **fields: object
) -> bytes:
    record = {
        "schema": 1, "trace_id": trace_id or os.urandom(16).hex(), "span_id": os.urandom(8).hex(),
        "name": f"{service}/call", "kind": "SERVER", "service": service,
        "start_us": BASE_US + i, "duration_us": 100 + i % 50, "status": "OK",
        "attributes": {"i": i},
    }  # fmt: skip
    record.update(fields)
    return json.dumps(record).encode()


def kpi_json(service: str = "orders", window: int = 0) -> bytes:
    return json.dumps({
        "schema": 1, "service": service, "instance": "10.0.0.7:7001", "method": "create",
        "role": "provider", "window_start_us": BASE_US + window * 10_000_000, "window_s": 10,
        "count": 10, "errors": 1, "latency_ms": {"p50": 1.0, "p99": 5.0},
    }).encode()  # fmt: skip


@contextmanager
def running(config: CollectorConfig, **kwargs: object) -> Iterator[Collector]:
    collector = Collector(config, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield collector
    finally:
        collector.stop()


def topics(bootstrap: str, partitions: int = 3) -> dict[str, str]:
    """Fresh spans, KPI and DLQ topics (created now) and a consumer group, for one test."""
    tag = uuid.uuid4().hex[:8]
    names = {
        "spans_topic": f"cstest.{tag}.spans",
        "kpis_topic": f"cstest.{tag}.kpis",
        "dlq_topic": f"cstest.{tag}.dlq",
        "group_id": f"cstest-{tag}",
    }
    created = [names["spans_topic"], names["kpis_topic"], names["dlq_topic"]]
    ensure_topics(bootstrap, created, partitions=partitions)
    return names
