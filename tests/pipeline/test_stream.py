"""The streaming job over real Kafka: windows closed once, restarts that neither lose nor
double-count, and a slow provider's weight pushed down in the registry."""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

import rpc.registry
from callscope_contract import SpanRecord, weights_key
from pipeline import (
    MAX_DEFAULT_WATERMARK_S,
    PipelineError,
    default_trigger_s,
    default_watermark_s,
    run_stream,
)
from storage import StorageError, open_analytics_store

WINDOW_S = 10
W_US = WINDOW_S * 1_000_000
BASE = 1_764_150_000_000_000  # a multiple of 10 s
SERVICE = "orders.OrderService"
LATENCY_US = {"10.0.0.1:7001": 5_000, "10.0.0.2:7001": 5_000, "10.0.0.3:7001": 205_000}
_ids = itertools.count(1)


def served(window: int, calls: int = 30) -> list[SpanRecord]:
    """``calls`` SERVER spans per instance inside window number ``window``."""
    spans = []
    for instance, latency in LATENCY_US.items():
        for i in range(calls):
            n = next(_ids)
            spans.append(SpanRecord(
                trace_id=f"{n:032x}", span_id=f"{n:016x}", name=f"{SERVICE}/create",
                kind="SERVER", service="orders", instance=instance,
                start_us=BASE + window * W_US + i * 1000, duration_us=latency,
                status="ERROR" if i == 0 and window == 0 else "OK",
            ))  # fmt: skip
    return spans


def send(bootstrap: str, topic: str, spans: list[SpanRecord]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for s in spans:
        producer.send(topic, s.to_json(), key=s.trace_id.encode())
    producer.flush(30)
    producer.close()


def new_topic(bootstrap: str, name: str) -> str:
    """A topic of this test's own (two partitions), named ``callscope.spans.NAME-<random>``."""
    topic = f"callscope.spans.{name}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    return topic


def counts(url: str) -> dict[tuple[int, str], tuple[int, int]]:
    with open_analytics_store(url) as analytics:
        samples = analytics.kpis(SERVICE, BASE, BASE + 100 * W_US)
    return {(s.window_start_us, s.instance): (s.count, s.errors) for s in samples}


def test_windows_close_once_across_a_restart_and_the_slow_provider_loses_weight(
    spark: Any, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = new_topic(kafka_bootstrap, "stream")
    store = f"sqlite://{tmp_path / 'analytics.db'}"
    registry = rpc.registry.connect(f"memory://stream-{uuid.uuid4().hex[:6]}")
    source = f"kafka://{kafka_bootstrap}/{topic}"

    def run() -> None:
        query = run_stream(spark, source, str(tmp_path / "checkpoint"), stores=[store],
                           registry=registry, window_s=WINDOW_S, watermark_s=5,
                           available_now=True)  # fmt: skip
        assert query.awaitTermination(240), "the stream did not drain the topic"
        assert query.exception() is None

    try:
        # Windows 0 and 1, then a span in window 5 moves the watermark past them.
        send(kafka_bootstrap, topic, served(0) + served(1) + served(5, calls=1))
        run()
        first = counts(store)
        assert first == {
            **{(BASE, i): (30, 1) for i in LATENCY_US},
            **{(BASE + W_US, i): (30, 0) for i in LATENCY_US},
        }
        doc = registry.get_config(weights_key(SERVICE)).value["weights"]
        slow = doc["10.0.0.3:7001"]["weight"]
        assert slow <= 30 and doc["10.0.0.1:7001"]["weight"] == 100
        # A restart on the same checkpoint: only the new window is added, nothing doubles.
        send(kafka_bootstrap, topic, served(6) + served(12, calls=1))
        run()
        second = counts(store)
        assert {k: v for k, v in second.items() if k[0] < BASE + 2 * W_US} == first
        assert {k for k in second if k[0] >= BASE + 2 * W_US} == {
            (BASE + 5 * W_US, i) for i in LATENCY_US
        } | {(BASE + 6 * W_US, i) for i in LATENCY_US}
    finally:
        registry.close()


def test_a_stream_needs_kafka_and_a_sane_window(spark: Any, tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as caught:
        run_stream(spark, "sqlite://x.db", str(tmp_path))
    assert caught.value.code == "BAD_SOURCE"
    with pytest.raises(PipelineError) as caught:
        run_stream(spark, "kafka://127.0.0.1:9092/t", str(tmp_path), window_s=1)
    assert caught.value.code == "BAD_OPTION"
    for trigger in (-1, float("nan"), 61):
        with pytest.raises(PipelineError) as caught:
            run_stream(spark, "kafka://127.0.0.1:9092/t", str(tmp_path), trigger_s=trigger)
        assert caught.value.code == "BAD_OPTION"


def test_the_default_watermark_is_half_a_window_at_most_10_s_and_the_trigger_a_twentieth() -> None:
    # a window's first span waits a window plus the watermark: at 60 s, 70 s (not 90 s)
    assert MAX_DEFAULT_WATERMARK_S == 10
    assert [default_watermark_s(w) for w in (5, 10, 20, 21, 60, 3600)] == [2, 5, 10, 10, 10, 10]
    # and a micro-batch every twentieth of a window, within 1 and 5 s (not back to back)
    assert [default_trigger_s(w) for w in (5, 20, 60, 100, 3600)] == [1, 1, 3, 5, 5]


def test_the_last_window_before_the_topic_goes_quiet_is_still_emitted(
    spark: Any, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # No span comes after these: only the job's clock ticks can move the watermark past
    # their window (5 s windows, 2 s watermark, ticks 5 s behind: 12 s after it began).
    topic = new_topic(kafka_bootstrap, "quiet")
    store = f"sqlite://{tmp_path / 'analytics.db'}"
    now_us = int(time.time() * 1e6)
    start_us = now_us - now_us % 5_000_000
    spans = [SpanRecord(trace_id=f"{n:032x}", span_id=f"{n:016x}", name=f"{SERVICE}/create",
                        kind="SERVER", service="orders", instance="10.0.0.1:7001",
                        start_us=start_us + n, duration_us=1_000)
             for n in range(1, 21)]  # fmt: skip
    send(kafka_bootstrap, topic, spans)
    query = run_stream(spark, f"kafka://{kafka_bootstrap}/{topic}", str(tmp_path / "checkpoint"),
                       stores=[store], window_s=5)  # fmt: skip
    try:
        deadline = time.monotonic() + 150  # a busy 2-core box; due 12 s after the window
        found: list = []
        while not found and time.monotonic() < deadline and query.isActive:
            time.sleep(1)
            with contextlib.suppress(StorageError), open_analytics_store(store) as analytics:
                found = analytics.kpis(SERVICE, start_us, start_us + 5_000_000)
        assert query.exception() is None
        assert [(s.window_start_us, s.count) for s in found] == [(start_us, 20)]
    finally:
        query.stop()
