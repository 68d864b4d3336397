"""Kafka as a source: a consumer group over ``callscope.spans`` and ``callscope.kpis``.

The consumer is confluent-kafka (librdkafka): it fetches, decompresses and checks CRCs
in its own threads, off the GIL, where kafka-python spent ~35 us a record under it (the
collector's largest cost; benchmarks/RESULTS.md). Auto-commit and auto offset store are
off: offsets move only in :meth:`commit`, with the positions :meth:`mark` took after a
batch was polled, once that batch was stored -- so a crash replays (at-least-once) and
the idempotent store makes the replay harmless. Several collectors with one ``group_id``
share the partitions. While the store is failing, :meth:`wait` pauses every assigned
partition and keeps polling, so the group keeps us while nothing new is fetched.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, cast

from ._records import KPIS_TOPIC, SPANS_DLQ_TOPIC, SPANS_TOPIC, Message

__all__ = ["KafkaSource", "ensure_topics"]

log = logging.getLogger("callscope.collector.kafka")

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset to read


def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 3) -> None:
    """Create missing topics (a broker may not auto-create them)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="callscope-admin")
    try:
        missing = [t for t in topics if t not in set(admin.list_topics())]
        for topic in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


class KafkaSource:
    prefetch = 2  # batches polled ahead of the store: commits are per batch (mark/commit)
    batch_wait_s: float | None = None  # the config's

    def __init__(
        self,
        bootstrap: str,
        *,
        group_id: str = "callscope-collector",
        spans_topic: str = SPANS_TOPIC,
        kpis_topic: str = KPIS_TOPIC,
        dlq_topic: str = SPANS_DLQ_TOPIC,
        session_timeout_ms: int = 10_000,
        max_partition_fetch_bytes: int = 1 << 20,
        create_topics: bool = True,
        **options: Any,
    ) -> None:
        """``options`` are librdkafka settings (``fetch.max.bytes``...), passed on as is."""
        from confluent_kafka import Consumer

        if create_topics:
            ensure_topics(bootstrap, [spans_topic, kpis_topic, dlq_topic])
        # Messages carry the logical topic (what they hold); origin keeps the real one.
        self._kinds = {spans_topic: SPANS_TOPIC, kpis_topic: KPIS_TOPIC}
        self.name = f"kafka:{group_id}"
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "client.id": "callscope-collector",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session_timeout_ms,
                # A member learns of a rebalance (another collector joined) from a heartbeat.
                "heartbeat.interval.ms": max(500, session_timeout_ms // 10),
                "max.partition.fetch.bytes": max_partition_fetch_bytes,
                "fetch.max.bytes": 16 << 20,
                "queued.max.messages.kbytes": 16 << 10,  # bounds the prefetch buffer (16 MiB)
                **options,
            },
            logger=log,
        )
        # Join the group only once the broker's metadata has the topics: a group assigned
        # while they are unknown gets no partitions until the next metadata refresh.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self._known(spans_topic, kpis_topic):
            time.sleep(0.2)
        self.consumer.subscribe([spans_topic, kpis_topic])
        self._pending: list[Message] = []  # fetched while paused (a new assignment)
        self._offsets: Offsets = {}

    def _known(self, *topics: str) -> bool:
        try:
            found = self.consumer.list_topics(timeout=5).topics
        except Exception:  # the broker is not reachable yet
            return False
        return all(t in found and found[t].partitions and not found[t].error for t in topics)

    def _messages(self, records: list[Any], offsets: Offsets) -> list[Message]:
        """Messages of the records; ``offsets`` advances past each one."""
        out, kinds = [], self._kinds
        for r in records:
            if r.error():
                log.warning("callscope collector: kafka: %s", r.error())
                continue
            topic, partition, offset = r.topic(), r.partition(), r.offset()
            origin = {"topic": topic, "partition": partition, "offset": offset}
            out.append(Message(kinds.get(topic, topic), r.value() or b"", r.key() or b"", origin))
            offsets[(topic, partition)] = offset + 1
        return out

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        if self._pending:
            out, self._pending = self._pending[:max_records], self._pending[max_records:]
            for m in out:  # only what is handed over may be committed
                where = cast(dict[str, Any], m.origin)
                self._offsets[(where["topic"], where["partition"])] = where["offset"] + 1
            return out
        return self._messages(self.consumer.consume(max_records, timeout_s), self._offsets)

    def mark(self) -> Offsets:
        """The positions after everything polled so far (what committing it would store)."""
        marked, self._offsets = self._offsets, {}
        return marked

    def commit(self, mark: Offsets | None = None) -> None:
        """Commit a :meth:`mark` (default: everything polled so far), synchronously."""
        from confluent_kafka import KafkaException, TopicPartition

        offsets = self.mark() if mark is None else mark
        if not offsets:
            return
        try:
            done = self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
            failed = [tp for tp in done or () if tp.error]
            if failed:
                raise KafkaException(failed[0].error)
        except KafkaException as exc:
            # The group rebalanced: another member owns these partitions now and reads from
            # the last committed offset; the store absorbs the duplicates.
            log.warning("callscope collector: offset commit refused (%s); records will repeat", exc)
            raise

    def wait(self, seconds: float) -> None:
        assigned = self.consumer.assignment()
        if assigned:
            self.consumer.pause(assigned)
        try:
            # Newly assigned partitions are not paused yet: keep what they bring.
            self._pending += self._messages(self.consumer.consume(500, seconds), {})
        finally:
            current = set((tp.topic, tp.partition) for tp in self.consumer.assignment())
            still = [tp for tp in assigned if (tp.topic, tp.partition) in current]
            if still:  # a rebalance during the poll may have taken some away
                self.consumer.resume(still)

    def lag(self) -> int | None:
        """Records behind the high watermarks librdkafka saw last (no broker round trip)."""
        assigned = self.consumer.assignment()
        if not assigned:
            return 0
        total = 0
        for tp in self.consumer.position(assigned):
            _, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=True)
            if high >= 0 and tp.offset >= 0:
                total += max(0, high - tp.offset)
        return total

    def close(self) -> None:
        self.consumer.close()
