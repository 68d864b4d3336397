"""Kafka smoke test: a message produced with kafka-python comes back to a consumer."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.kafka


def test_produce_and_consume(kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"callscope.test.{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        producer.send(topic, key=b"trace-1", value=b'{"span": 1}').get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"callscope-test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        record = next(iter(consumer), None)  # the first record, or None after 30 s of silence
    finally:
        consumer.close()
    assert record is not None, "the produced message never reached the consumer"
    assert (record.key, record.value) == (b"trace-1", b'{"span": 1}')
