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

from ._link_report import LinkReport
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
    """Sends to ``callscope.spans.dlq`` with ``acks=all`` and waits for every send.

    While Kafka is away, kafka-python's reconnect lines for this producer are held back:
    one line says it went away, one every ``report_every_s`` seconds that it still is, one
    that it is back (:class:`LinkReport`). ``proxy_url`` (``socks5://host:port``) sends
    every broker connection through a SOCKS5 proxy.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = SPANS_DLQ_TOPIC,
        *,
        report_every_s: float = 30.0,
        proxy_url: str | None = None,
    ) -> None:
        from kafka import KafkaProducer

        seconds = isinstance(report_every_s, int | float) and not isinstance(report_every_s, bool)
        if not (seconds and 0.1 <= report_every_s <= 86_400):
            raise ValueError(f"report_every_s is seconds in [0.1, 86400], not {report_every_s!r}")
        self.topic = topic
        client_id = "callscope-collector-dlq"
        before = {t.ident for t in threading.enumerate()}
        proxy = {"proxy_url": proxy_url} if proxy_url else {}  # kafka-python 3's option
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5,
            max_block_ms=10_000, request_timeout_ms=10_000, client_id=client_id, **proxy,
        )  # fmt: skip
        mine = {
            t.ident
            for t in threading.enumerate()
            if t.ident not in before and t.ident is not None and client_id in t.name
        }  # its network thread
        self._link = LinkReport(f"dead letters to {topic}", mine, report_every_s).install()
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
                self._link.failed(f"sending failed: {exc!r}")
                raise StorageUnavailable(f"dead-letter topic {self.topic}: {exc}") from exc
        self._link.succeeded()

    def close(self) -> None:
        try:
            self._producer.close(timeout=5)
        finally:
            self._link.uninstall()
