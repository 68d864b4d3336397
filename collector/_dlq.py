"""Dead letters: records that cannot be stored, kept with their code and reason.

Each is one JSON object: ``code``, ``reason``, ``field``, ``topic``, ``origin`` (partition
and offset, spool directory, or ``otlp``), ``key``, ``value`` (the original bytes as text,
or base64 with ``"encoding": "base64"`` when they are not UTF-8) and ``time_us``.
Kafka mode writes them to ``callscope.spans.dlq``; embedded mode appends them to a file.
A dead letter is written (and acknowledged) before the source's offset moves past it.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from storage import StorageUnavailable

from ._records import SPANS_DLQ_TOPIC, Message, Rejection

__all__ = ["DeadLetters", "FileDeadLetters", "KafkaDeadLetters", "dead_letter"]


def dead_letter(message: Message, rejection: Rejection) -> dict[str, Any]:
    letter: dict[str, Any] = {
        "code": rejection.code,
        "reason": rejection.reason,
        "field": rejection.field,
        "topic": message.topic,
        "origin": message.origin,
        "key": message.key.decode(errors="replace"),
        "time_us": time.time_ns() // 1000,
    }
    value = message.value
    if not value and message.record is not None:  # a pre-decoded record (OTLP): itself
        value = message.record.to_json()
    try:
        letter["value"] = value.decode()
    except UnicodeDecodeError:
        letter["value"] = base64.b64encode(value).decode()
        letter["encoding"] = "base64"
    return letter


class DeadLetters(Protocol):
    def send(self, letters: Sequence[tuple[Message, Rejection]]) -> None:
        """Write durably; raise :class:`storage.StorageUnavailable` to be retried."""

    def close(self) -> None: ...


class FileDeadLetters:
    """JSON lines appended to a file (embedded mode), flushed and fsynced per batch."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, letters: Sequence[tuple[Message, Rejection]]) -> None:
        if not letters:
            return
        data = "".join(json.dumps(dead_letter(m, r)) + "\n" for m, r in letters).encode()
        with self._lock:
            try:
                with open(self.path, "ab") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise StorageUnavailable(f"dead-letter file {self.path}: {exc}") from exc

    def close(self) -> None:
        """Nothing stays open between batches."""


class KafkaDeadLetters:
    """Sends to ``callscope.spans.dlq`` with ``acks=all`` and waits for every send."""

    def __init__(self, bootstrap: str, topic: str = SPANS_DLQ_TOPIC) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5,
            max_block_ms=10_000, request_timeout_ms=10_000, client_id="callscope-collector-dlq",
        )  # fmt: skip
        self._lock = threading.Lock()

    def send(self, letters: Sequence[tuple[Message, Rejection]]) -> None:
        if not letters:
            return
        from kafka.errors import KafkaError

        with self._lock:
            try:
                futures = [
                    self._producer.send(
                        self.topic, key=m.key or None, value=json.dumps(dead_letter(m, r)).encode(),
                        headers=[("callscope.dlq.code", r.code.encode())],
                    )
                    for m, r in letters
                ]  # fmt: skip
                self._producer.flush(timeout=30)
                for future in futures:
                    future.get(timeout=30)
            except KafkaError as exc:
                raise StorageUnavailable(f"dead-letter topic {self.topic}: {exc}") from exc

    def close(self) -> None:
        self._producer.close(timeout=5)
