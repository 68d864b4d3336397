"""Kafka helpers for the instrumentation tests: read a topic back with a plain consumer, and a
private broker that a test may stop and start without disturbing the shared one."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from callscope.stack import Stack, StackPaths
from callscope.stack.recipe import Port
from callscope.stack.services.kafka import Kafka


def unique_topics() -> tuple[str, str]:
    """Per-test topics, so tests sharing a broker never read each other's records."""
    tag = uuid.uuid4().hex[:10]
    return f"callscope.spans.test-{tag}", f"callscope.kpis.test-{tag}"


def consume(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[tuple[bytes, bytes]]:
    """Every (key, value) on ``topic`` from the start, once ``expected`` arrived (or timeout)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.2)
        assert partitions, f"topic {topic} never appeared"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        got: list[tuple[bytes, bytes]] = []
        while len(got) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                got.extend((r.key, r.value) for r in records)
        # anything beyond the expected count (duplicates) shows up in a short extra poll
        for records in consumer.poll(timeout_ms=1000).values():
            got.extend((r.key, r.value) for r in records)
        return got
    finally:
        consumer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class _PrivatePaths(StackPaths):
    """The shared downloads (``dist``), a private run directory."""

    private_run: Path = Path()

    @property
    def run(self) -> Path:
        return self.private_run


@dataclass
class Broker:
    stack: Stack
    bootstrap: str

    def stop(self) -> None:
        self.stack.down(["kafka"])

    def start(self) -> None:
        self.stack.up(["kafka"])


@contextmanager
def private_kafka(run_dir: Path) -> Iterator[Broker]:
    """A real Kafka of its own (the same distribution ``callscope stack`` runs) on free ports."""
    client, controller = _free_port(), _free_port()

    class PrivateKafka(Kafka):
        ports = (Port(client, "client"), Port(controller, "controller"))

    stack = Stack(
        paths=_PrivatePaths(StackPaths.default().root, run_dir),
        catalog={"kafka": PrivateKafka},
        report=lambda text: None,
    )
    broker = Broker(stack, f"127.0.0.1:{client}")
    broker.start()
    try:
        yield broker
    finally:
        stack.down(["kafka"])
