"""Alarm rules in the streaming job over real Kafka, written to SQLite, Elasticsearch and
HBase alike: a file's rule and a registry's rule fire and resolve as the windows say."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

import rpc.registry
from pipeline import ALARMS_KEY, AlarmJob, parse_rules, run_stream
from storage import FIRING, RESOLVED, open_analytics_store
from tests.pipeline.test_stream import BASE, SERVICE, W_US, WINDOW_S, send, served
from tests.storage.conftest import backend_url

SLOW = "10.0.0.3:7001"


def spans(window: int, slow_ms: int, calls: int = 30) -> list[Any]:
    """``served`` spans, the third instance ``slow_ms`` slow."""
    out = served(window, calls)
    for s in out:
        if s.instance == SLOW:
            s.duration_us = slow_ms * 1000
    return out


def stored(url: str) -> set[tuple[str, str, int, str]]:
    with open_analytics_store(url, read_only=True) as analytics:
        analytics.refresh()
        page = analytics.alarms(BASE, BASE + 100 * W_US, limit=100)
        assert page.next_cursor is None
        by_service = analytics.alarms(BASE, BASE + 100 * W_US, service=SERVICE, limit=100)
        assert by_service.alarms == page.alarms
    return {(a.rule, a.target, (a.window_start_us - BASE) // W_US, a.state) for a in page.alarms}


def test_stream_alarms_fire_and_resolve_in_every_store(
    spark: Any, kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    topic = f"callscope.spans.alarms-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    stores = [backend_url(name, request, tmp_path) for name in ("sqlite", "elasticsearch", "hbase")]
    registry = rpc.registry.connect(f"memory://alarms-{uuid.uuid4().hex[:6]}")
    registry.put_config(ALARMS_KEY, {"rules": {"errors": {
        "metric": "error_rate", "op": ">", "threshold": 1, "include": [SERVICE]}}})  # fmt: skip
    slow = {"metric": "p99_ms", "op": ">", "threshold": 100, "scope": "instance", "silence": 0}
    file_rules = parse_rules({"rules": {"slow": slow}})
    try:
        # Windows 0-1: the third instance is 200 ms slow; 2-3 it recovered; window 0 also has
        # one error per instance (3 of 90 calls); a span in window 9 closes windows 0-3.
        send(kafka_bootstrap, topic, spans(0, 200) + spans(1, 200) + spans(2, 5) + spans(3, 5)
             + served(9, calls=1))  # fmt: skip
        query = run_stream(spark, f"kafka://{kafka_bootstrap}/{topic}",
                           str(tmp_path / "checkpoint"), stores=stores, window_s=WINDOW_S,
                           watermark_s=5, available_now=True,
                           alarms=AlarmJob(file_rules, registry))  # fmt: skip
        assert query.awaitTermination(240), "the stream did not drain the topic"
        assert query.exception() is None
        expected = {
            ("slow", SLOW, 0, FIRING), ("slow", SLOW, 1, FIRING), ("slow", SLOW, 2, RESOLVED),
            ("errors", "", 0, FIRING), ("errors", "", 1, RESOLVED),
        }  # fmt: skip
        for url in stores:
            assert stored(url) == expected, url
    finally:
        registry.close()
        for url in stores:
            with open_analytics_store(url) as analytics:
                drop = getattr(analytics.table, "drop", None)
                if drop:
                    drop()
