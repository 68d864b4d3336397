"""Alarm rules in the jobs: the streaming job over real Kafka, written to SQLite,
Elasticsearch and HBase alike (a file's rule and a registry's rule fire and resolve as the
windows say), and the batch job from ``callscope pipeline batch --alarms FILE``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

import rpc.registry
from callscope.cli import main
from pipeline import ALARMS_KEY, AlarmJob, parse_rules, run_stream
from storage import FIRING, RESOLVED, open_analytics_store, open_span_store
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


def test_batch_alarms_from_a_rules_file(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = f"sqlite://{tmp_path / 'spans.db'}", f"sqlite://{tmp_path / 'out.db'}"
    with open_span_store(source) as store:  # orders is slow in windows 0-1, then recovers
        store.write_spans([s for w, ms in enumerate((200, 200, 5, 5)) for s in spans(w, ms)])
    rules = tmp_path / "alarms.json"
    rules.write_text(json.dumps({"rules": {"orders-p99": {
        "metric": "p99_ms", "op": ">", "threshold": 100, "silence": 0,
        "message": "{name} p99 {value} ms"}}}))  # fmt: skip
    args = ["pipeline", "batch", "--source", source, "--from", str(BASE),
            "--to", str(BASE + 4 * W_US), "--window", str(WINDOW_S), "--store", out]  # fmt: skip
    assert main([*args, "--alarms", str(rules)]) == 0, capsys.readouterr()
    assert "alarms: 2 firing, 1 resolved" in capsys.readouterr().out
    with open_analytics_store(out) as analytics:
        page = analytics.alarms(BASE, BASE + 4 * W_US, service="orders")
    got = [((a.window_start_us - BASE) // W_US, a.state, a.message) for a in page.alarms]
    assert got == [(2, RESOLVED, "orders p99 5 ms"), (1, FIRING, "orders p99 200 ms"),
                   (0, FIRING, "orders p99 200 ms")]  # fmt: skip
    rules.write_text('{"rules": {"x": {"metric": "p99_ms", "op": ">", "threshold": -1}}}')
    assert main([*args, "--alarms", str(rules)]) == 2
    assert "BAD_ALARM_RULE" in capsys.readouterr().err
