"""The Kafka exporter on confluent-kafka (librdkafka): the fast backend.

Why a second client: kafka-python builds every record in Python while holding the
GIL, about 40-70 µs per record on our 2-core machines, which alone costs a traced
echo service most of its throughput; librdkafka batches, compresses and sends in
its own threads, a few µs per record. Same contract as the kafka-python backend:
never raises, returns what Kafka did not acknowledge, and waits for every send to
settle (acknowledged or failed within ``message.timeout.ms``) so a record is never
both returned for the spool and still retried by the producer.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from callscope_contract import KPIS_TOPIC, SPANS_TOPIC

from ._spool import SpoolEntry as Record

__all__ = ["ConfluentKafkaExporter"]

log = logging.getLogger("callscope.instrument.kafka")

DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,  # the producer's own retries never duplicate
    "compression.type": "lz4",
    "linger.ms": 20,
    "batch.size": 256 * 1024,
    "message.timeout.ms": 5000,  # a send settles (acked or failed) within this
    "socket.connection.setup.timeout.ms": 3000,
    "client.id": "callscope-instrument",
}


class ConfluentKafkaExporter:
    """Sends each record to its topic, key = trace id; ``options`` are librdkafka settings."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topics: Sequence[str] = (SPANS_TOPIC, KPIS_TOPIC),
        partitions: int = 3,
        **options: Any,
    ) -> None:
        from confluent_kafka import Producer

        if not bootstrap:
            raise ValueError("the Kafka exporter needs a bootstrap (CALLSCOPE_KAFKA_BOOTSTRAP)")
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.partitions = partitions
        self.options = {**DEFAULTS, **options, "bootstrap.servers": bootstrap}
        self.options.setdefault("error_cb", _quiet_error)
        self.options.setdefault("logger", log)
        self.options["delivery.report.only.error"] = True
        self.options["on_delivery"] = self._on_error_report
        self._failed: list[Record] = []
        self.settle_s = self.options["message.timeout.ms"] / 1000 + 2.0
        self._producer = Producer(self.options)
        self._topics_checked = False

    def _ensure_topics(self) -> None:
        """Create the topics when the broker does not auto-create them (best effort)."""
        self._topics_checked = True
        try:
            from confluent_kafka.admin import AdminClient, NewTopic

            admin = AdminClient(
                {"bootstrap.servers": self.bootstrap, "error_cb": _quiet_error}  # type: ignore[dict-item]
            )
            existing = admin.list_topics(timeout=3).topics
            missing = [NewTopic(t, self.partitions, 1) for t in self.topics if t not in existing]
            created = admin.create_topics(missing, operation_timeout=5) if missing else {}
            for future in created.values():
                try:
                    future.result(5)
                except Exception as exc:  # already exists (a race), or not allowed
                    log.debug("callscope: topic not created: %s", exc)
        except Exception as exc:
            self._topics_checked = False
            log.debug("callscope: cannot check topics: %s", exc)

    def export(self, records: Sequence[Record]) -> Sequence[Record]:
        if not self._topics_checked:
            if not _reachable(self.bootstrap):
                return records
            self._ensure_topics()
        producer = self._producer
        self._failed = []
        sent = 0
        produce = producer.produce
        for record in records:
            topic, key, value = record
            try:
                produce(topic, value, key)
            except BufferError:  # the local queue is full: Kafka has been away a while
                break
            except Exception as exc:
                log.debug("callscope: Kafka produce failed: %s", exc)
                self._failed.append(record)
            sent += 1
        left = producer.flush(self.settle_s)  # every send settles within message.timeout.ms
        if left:  # never sent ones are withdrawn, so they come back exactly, as failures
            producer.purge(in_queue=True, in_flight=False, blocking=False)
            left = producer.flush(1.0)
        failed = self._failed + list(records[sent:])
        if left:  # in flight even after the wait: count the newest as failed (at-least-once)
            failed += list(records[max(0, sent - left) : sent])
        return failed

    def _on_error_report(self, err: Any, msg: Any) -> None:
        """Called for failed sends only (``delivery.report.only.error``): no GIL round trip
        per acknowledged record, which matters to the event loop sharing the GIL."""
        if err is not None:
            self._failed.append(Record(msg.topic(), msg.key() or b"", msg.value() or b""))

    def flush(self, timeout: float) -> None:
        self._producer.flush(timeout)

    def close(self) -> None:
        left = self._producer.flush(self.settle_s)
        if left:
            log.warning("callscope: %d records were still unsent to Kafka at close", left)


def _quiet_error(err: Any) -> None:
    log.debug("callscope: Kafka client: %s", err)


def _reachable(bootstrap: str) -> bool:
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), 2.0):
                return True
        except (OSError, ValueError):
            continue
    return False
