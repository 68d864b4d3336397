"""The collector on the real Kafka: crash and restart, dead letters, an Elasticsearch outage.

Every test uses its own topics and consumer group, so tests (and other sessions sharing
the broker) never see each other's records.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer

from collector import CollectorConfig
from storage import open_span_store

from .helpers import running, span_json, topics, wait_for
from .tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kafka


def producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


def sqlite_count(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def start_collector(bootstrap: str, names: dict[str, str], db: Path, log: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "callscope", "collector", "--kafka", bootstrap,
        "--store", f"sqlite://{db}", "--group", names["group_id"],
        "--spans-topic", names["spans_topic"], "--kpis-topic", names["kpis_topic"],
        "--dlq-topic", names["dlq_topic"], "--http-port", "-1", "--batch-size", "300",
        "--grpc-port", "-1",
        "--batch-wait-ms", "50", "--session-timeout-ms", "6000",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def test_sigkill_mid_stream_then_restart_stores_every_span_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = topics(kafka_bootstrap)
    db, log = tmp_path / "store.db", tmp_path / "collector.log"
    total = 6000
    send = producer(kafka_bootstrap)

    def produce() -> None:
        for i in range(total):
            send.send(names["spans_topic"], key=str(i % 97).encode(), value=span_json("kill", i))
            if i % 200 == 199:
                time.sleep(0.05)  # a steady stream, so the kill lands mid-stream
        send.flush()

    proc = start_collector(kafka_bootstrap, names, db, log)
    streamer = threading.Thread(target=produce)
    streamer.start()
    try:
        wait_for(lambda: sqlite_count(db) >= 1000, 60, "the first 1000 spans", every_s=0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = sqlite_count(db)
        assert killed_at < total, "the kill should land mid-stream"
        proc = start_collector(kafka_bootstrap, names, db, log)
        streamer.join(60)
        wait_for(lambda: sqlite_count(db) >= total, 90, f"{total} spans", every_s=0.2)
        time.sleep(1.0)  # anything redelivered late would show up as extra rows
        assert sqlite_count(db) == total, log.read_text()[-3000:]
        with sqlite3.connect(db) as conn:
            distinct = conn.execute(
                "SELECT COUNT(DISTINCT trace_id || span_id) FROM spans"
            ).fetchone()[0]
        assert distinct == total
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
        send.close()


def test_malformed_messages_go_to_the_dlq_with_reasons_while_good_ones_flow(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    names = topics(kafka_bootstrap)
    send = producer(kafka_bootstrap)
    bad = {
        "NOT_JSON": b"\xff\xfe garbage",
        "INVALID_FIELD": span_json("dlq", trace_id="0" * 32),
        "UNSUPPORTED_SCHEMA": span_json("dlq", schema=7),
    }
    for i in range(300):
        send.send(names["spans_topic"], value=span_json("dlq", i))
        if i % 100 == 50:
            for value in bad.values():
                send.send(names["spans_topic"], value=value)
    send.send(names["kpis_topic"], value=b'{"schema": 1, "service": "x"}')
    send.flush()
    cfg = CollectorConfig(
        store_url=f"sqlite://{tmp_path / 'store.db'}", http_port=None, batch_size=100,
        batch_wait_s=0.05, kafka_bootstrap=kafka_bootstrap, session_timeout_ms=6000, **names,
    )  # fmt: skip
    with running(cfg) as collector:
        wait_for(lambda: collector.span_store.count() == 300, 60, "300 good spans")
        wait_for(lambda: collector.metrics.total("dlq") == 10, 30, "10 dead letters")
    consumer = KafkaConsumer(
        names["dlq_topic"], bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=5000, group_id=None,
    )  # fmt: skip
    letters = [json.loads(m.value) for m in consumer]
    consumer.close()
    send.close()
    assert len(letters) == 10
    codes = [letter["code"] for letter in letters]
    assert codes.count("NOT_JSON") == 3 and codes.count("UNSUPPORTED_SCHEMA") == 3
    assert codes.count("INVALID_FIELD") == 4  # three spans, and the KPI without a role
    for letter in letters:
        assert letter["reason"] and letter["origin"]["topic"] in (
            names["spans_topic"], names["kpis_topic"]
        )  # fmt: skip
    not_json = next(x for x in letters if x["code"] == "NOT_JSON")
    assert not_json["encoding"] == "base64"


@pytest.mark.elasticsearch
def test_elasticsearch_down_for_30s_under_a_steady_stream_loses_nothing(
    kafka_bootstrap: str, elasticsearch_url: str, tmp_path: Path
) -> None:
    names = topics(kafka_bootstrap)
    host, port = elasticsearch_url.split("://")[-1].rsplit(":", 1)
    proxy = TcpProxy((host, int(port))).start()
    prefix = f"cstest-outage-{uuid.uuid4().hex[:8]}"
    url = f"elasticsearch://127.0.0.1:{proxy.port}?prefix={prefix}&timeout_s=5&retries=0"
    cfg = CollectorConfig(
        store_url=url, http_port=None, batch_size=200, batch_wait_s=0.1,
        kafka_bootstrap=kafka_bootstrap, session_timeout_ms=6000, backoff_max_s=2.0, **names,
    )  # fmt: skip
    send = producer(kafka_bootstrap)
    produced = 0
    streaming = threading.Event()
    streaming.set()

    def produce() -> None:
        nonlocal produced
        while streaming.is_set():
            for _ in range(20):
                send.send(names["spans_topic"], value=span_json("outage", produced))
                produced += 1
            time.sleep(0.1)  # ~200 spans/s
        send.flush()

    streamer = threading.Thread(target=produce)
    direct = open_span_store(f"elasticsearch://{host}:{port}?prefix={prefix}")
    try:
        with running(cfg) as collector:
            streamer.start()
            wait_for(lambda: collector.metrics.total("stored_spans") > 200, 30, "a first flow")
            proxy.stop()
            down_at = time.monotonic()
            time.sleep(30)
            stored_while_down = collector.metrics.total("stored_spans")
            proxy.start()
            up_for = time.monotonic() - down_at
            time.sleep(3)
            streaming.clear()
            streamer.join(30)
            wait_for(lambda: direct.count() == produced, 60, f"all {produced} spans", every_s=0.5)
            assert collector.metrics.total("retries") > 0
            assert collector.metrics.total("dlq") == 0
            assert up_for >= 30 and stored_while_down < produced
    finally:
        streaming.clear()
        proxy.stop()
        direct.drop()
        direct.close()
        send.close()
