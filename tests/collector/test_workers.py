"""Scale-out: several collector processes in one consumer group (``workers``).

Every test uses its own topics (4 partitions) and consumer group on the real Kafka.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from collector import CollectorConfig, CollectorPool

from .helpers import span_json, topics, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.kafka


def spans_partitions_by_member(bootstrap: str, group: str, topic: str) -> list[set[int]]:
    """The spans partitions each member of a stable group owns ([] while rebalancing)."""
    from confluent_kafka import ConsumerGroupState
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        found = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except Exception:  # the group does not exist yet
        return []
    if found.state != ConsumerGroupState.STABLE:
        return []
    return [
        {tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic}
        for m in found.members
    ]


def shared_by_two(bootstrap: str, names: dict[str, str]) -> bool:
    owned = spans_partitions_by_member(bootstrap, names["group_id"], names["spans_topic"])
    return len(owned) == 2 and all(owned)


def stored_rows(db: Path) -> tuple[int, int]:
    if not db.exists():
        return 0, 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            row = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT trace_id || span_id) FROM spans"
            ).fetchone()
        except sqlite3.OperationalError:  # no table yet
            return 0, 0
    return row[0], row[1]


def test_two_workers_share_the_partitions_and_store_every_span_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    names = topics(kafka_bootstrap, partitions=4)
    db = tmp_path / "store.db"
    config = CollectorConfig(
        store_url=f"sqlite://{db}", kafka_bootstrap=kafka_bootstrap, http_port=None,
        batch_size=300, batch_wait_s=0.05, kpi_interval_s=3600, session_timeout_ms=6000,
        workers=2, **names,
    )  # fmt: skip
    total = 4000
    pool = CollectorPool(config).start()
    try:
        # Both in the group, each owning some partitions, before anything is produced: no
        # rebalance mid-stream, so no batch is replayed and each span is stored once.
        wait_for(lambda: shared_by_two(kafka_bootstrap, names), 25, "a stable group of two")
        send = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
        for i in range(total):
            send.send(names["spans_topic"], key=str(i % 97).encode(), value=span_json("two", i))
        send.flush()
        send.close()
        wait_for(lambda: pool.total("stored_spans") >= total, 25, f"{total} spans", 0.05)
        time.sleep(0.5)  # anything stored twice would show in the counters
        per_worker = [pool.count(i, "stored_spans") for i in range(2)]
        assert all(per_worker), f"one worker stored nothing: {per_worker}"
        assert sum(per_worker) == total, per_worker
        assert pool.failed() == []
    finally:
        assert pool.stop() == 0
    assert stored_rows(db) == (total, total)
    assert time.monotonic() - started < 40


def start_cli(bootstrap: str, names: dict[str, str], db: Path, log: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "callscope", "collector", "--kafka", bootstrap,
        "--store", f"sqlite://{db}", "--group", names["group_id"],
        "--spans-topic", names["spans_topic"], "--kpis-topic", names["kpis_topic"],
        "--dlq-topic", names["dlq_topic"], "--http-port", "-1", "--batch-size", "300",
        "--grpc-port", "-1",
        "--batch-wait-ms", "50", "--session-timeout-ms", "6000", "--workers", "2",
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def workers_of(pid: int) -> list[int]:
    """The worker processes of a CLI collector (not multiprocessing's resource tracker)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    found = []
    for child in map(int, text.split()):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(child)
    return found


@pytest.mark.parametrize("ending", ["sigterm", "worker killed"])
def test_cli_workers_stop_on_sigterm_and_fail_when_one_dies(
    kafka_bootstrap: str, tmp_path: Path, ending: str
) -> None:
    started = time.monotonic()
    names = topics(kafka_bootstrap, partitions=4)
    db, log = tmp_path / "store.db", tmp_path / "collector.log"
    proc = start_cli(kafka_bootstrap, names, db, log)
    try:
        wait_for(lambda: shared_by_two(kafka_bootstrap, names), 25, "a stable group of two")
        workers = workers_of(proc.pid)
        assert len(workers) == 2, workers
        if ending == "sigterm":
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, log.read_text()[-3000:]
        else:
            os.kill(workers[1], signal.SIGKILL)
            assert proc.wait(20) == 1, log.read_text()[-3000:]
            assert "exited (status -9); stopping all" in log.read_text()
        for worker in workers:  # every worker is gone, the survivor stopped too
            assert (
                not Path(f"/proc/{worker}").exists()
                or b"zombie" in Path(f"/proc/{worker}/status").read_bytes().lower()
            )
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - started < 40
