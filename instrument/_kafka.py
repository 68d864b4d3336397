"""The Kafka exporter on kafka-python: batched, compressed, ``acks=all``, key = trace id.

The fallback backend: pure Python, so it holds the GIL for each record it builds
(see :mod:`instrument._kafka_confluent` for the fast one).

It is called only from the export thread and never raises for a delivery problem:
records Kafka did not acknowledge are returned, and the pipeline spools them. A
batch waits for every send to settle (acknowledged, or expired after
``delivery_timeout_ms``), so a record is either delivered or returned, never both
while the producer retries it in the background: the replay does not duplicate it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import Any

from callscope_contract import KPIS_TOPIC, SPANS_TOPIC

from ._spool import SpoolEntry as Record

__all__ = ["KafkaExporter"]

log = logging.getLogger("callscope.instrument.kafka")

DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "compression_type": "lz4",  # decoded by kafka-python with the lz4 package
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    "max_block_ms": 2000,  # metadata wait in send(), on the export thread only
    "bootstrap_timeout_ms": 3000,
    "request_timeout_ms": 3000,
    "delivery_timeout_ms": 5000,  # a send settles (acked or failed) within this
    "client_id": "callscope-instrument",
}


class KafkaExporter:
    """Sends each record to its topic; ``options`` override the producer settings above."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topics: Sequence[str] = (SPANS_TOPIC, KPIS_TOPIC),
        partitions: int = 3,
        **options: Any,
    ) -> None:
        if not bootstrap:
            raise ValueError("the Kafka exporter needs a bootstrap (CALLSCOPE_KAFKA_BOOTSTRAP)")
        self.bootstrap = bootstrap
        self.options = {**DEFAULTS, **options}
        self.flush_timeout_s = self.options["delivery_timeout_ms"] / 1000 + 2.0
        self.topics = tuple(topics)
        self.partitions = partitions
        self._producer: Any = None
        self._topics_checked = False
        self._unclosed: list[Any] = []  # producers whose close failed; retried later

    def _reachable(self) -> bool:
        """A plain TCP connect to a bootstrap server first: it fails fast when Kafka is away,
        and kafka-python leaks sockets when its producer cannot bootstrap."""
        for address in self.bootstrap.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), 2.0):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def _connect(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            if not self._reachable():
                raise ConnectionError(f"no Kafka broker answers at {self.bootstrap}")
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap.split(","), **self.options
            )
            # kafka-python closes every producer in an atexit hook of its own, registered
            # after instrument.auto's and so run before it: the final export would meet a
            # closed producer and spool the last records. The pipeline closes ours itself.
            unregister = getattr(self._producer, "_unregister_cleanup", None)
            if unregister is not None:
                unregister()
            if not self._topics_checked:
                self._ensure_topics()
        return self._producer

    def _ensure_topics(self) -> None:
        """Create the topics when the broker does not auto-create them (best effort)."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        try:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","))
        except KafkaError as exc:
            log.debug("callscope: cannot check topics: %s", exc)
            return
        try:
            missing = set(self.topics) - set(admin.list_topics())
            if missing:
                admin.create_topics(
                    [NewTopic(t, self.partitions, 1) for t in sorted(missing)],
                    validate_only=False,
                )
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            log.debug("callscope: cannot create topics: %s", exc)
        finally:
            admin.close()
        self._topics_checked = True

    def export(self, records: Sequence[Record]) -> Sequence[Record]:
        try:
            producer = self._connect()
        except Exception as exc:
            log.debug("callscope: Kafka at %s unreachable: %s", self.bootstrap, exc)
            return records
        sent = []
        for record in records:
            try:
                sent.append(producer.send(record.topic, value=record.value, key=record.key))
            except Exception as exc:  # no metadata within max_block_ms: Kafka is away
                log.debug("callscope: Kafka send failed: %s", exc)
                break
        try:
            producer.flush(timeout=self.flush_timeout_s)  # every send settles in this time
        except Exception as exc:
            log.debug("callscope: Kafka flush failed: %s", exc)
        failed = [r for r, f in zip(records, sent, strict=False) if not _delivered(f)]
        failed.extend(records[len(sent) :])
        if failed:
            self._reset()
        return failed

    def _reset(self) -> None:
        """Drop the producer after a failure; the next batch connects afresh."""
        if self._producer is not None:
            self._unclosed.append(self._producer)
            self._producer = None
        self._close_unclosed(0.0)

    def _close_unclosed(self, timeout: float) -> None:
        still = []
        for producer in self._unclosed:
            if not _close(producer, timeout):
                still.append(producer)
        self._unclosed = still

    def flush(self, timeout: float) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout)
            except Exception:
                log.debug("callscope: Kafka flush failed", exc_info=True)

    def close(self) -> None:
        self._reset()
        self._close_unclosed(self.flush_timeout_s)
        if self._unclosed:
            log.warning("callscope: %d Kafka producers did not close", len(self._unclosed))


def _close(producer: Any, timeout: float) -> bool:
    """Close a producer, abandoning what it could not send in ``timeout``.

    kafka-python's ``close(timeout)`` flushes first and raises when the flush times out,
    leaving the producer open (its ``__del__`` then raises again). So on failure we stop
    its sender thread the way ``close`` would after the flush (``force_close`` fails the
    pending batches), then close again with nothing left to flush.
    """
    try:
        producer.close(timeout=timeout)
        return True
    except Exception:
        pass
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(5.0)
    try:
        producer.close(timeout=0)
        return True
    except Exception:
        log.warning("callscope: a Kafka producer would not close", exc_info=True)
        return False


def _delivered(future: Any) -> bool:
    return bool(future.is_done and future.succeeded())
