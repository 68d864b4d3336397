"""OTLP requests as a source: the receivers hand spans over and wait for the store.

A :class:`Ticket` is one request's spans; it is settled only when the worker commits the
batch that held them, i.e. after the store write (or the dead-letter write for spans the
store refused for good), so a receiver never acknowledges a span that is not stored.

Several collector workers may take batches from one source at once (see :meth:`mark`).
Bounded: at most ``max_requests`` requests and ``max_spans`` spans wait at once (one
request is always taken when nothing waits, whatever its size); past that :meth:`submit`
says no and the receiver answers 503 / ``RESOURCE_EXHAUSTED`` with a retry delay, which is
the back-pressure an OpenTelemetry exporter understands.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ._records import SPANS_TOPIC, Message, Rejection

__all__ = ["OtlpSource", "Ticket"]


class Ticket:
    """One request's spans: a receiver waits on it; :meth:`OtlpSource.commit` settles it."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def rejected(self) -> list[str]:
        """Why each span that was not stored was refused (validation or the store)."""
        return [f"{m.rejection.code}: {m.rejection.reason}" for m in self.messages if m.rejection]

    def settle(self) -> None:
        with self._lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def wait(self, timeout_s: float) -> bool:
        """True once stored; False after ``timeout_s`` (blocking receivers)."""
        return self._done.wait(timeout_s)

    async def wait_async(self, timeout_s: float) -> bool:
        """:meth:`wait` for a receiver on an event loop (no thread parked per request)."""
        loop = asyncio.get_running_loop()
        stored = loop.create_future()

        def stored_now() -> None:
            if not stored.done():
                stored.set_result(True)

        def wake() -> None:
            loop.call_soon_threadsafe(stored_now)

        with self._lock:
            if self._done.is_set():
                return True
            self._callbacks.append(wake)
        try:
            return await asyncio.wait_for(stored, timeout_s)
        except TimeoutError:
            return False


def messages_of(results: Sequence[tuple[dict[str, Any] | None, object]]) -> list[Message]:
    """Records, or span dicts with their rejections, as messages. A rejected span's value
    is its dict as JSON (for the DLQ); a record's is left empty -- the DLQ encodes the
    record itself in the rare case the store refuses it."""
    out = []
    origin: dict[str, object] = {"source": "otlp"}
    for data, result in results:
        if isinstance(result, Rejection):
            value = orjson.dumps(data, default=str)
            out.append(Message(SPANS_TOPIC, value, origin=origin, rejection=result))
        else:
            out.append(Message(SPANS_TOPIC, b"", origin=origin, record=result))  # type: ignore[arg-type]
    return out


class OtlpSource:
    name = "otlp"
    # One batch per worker at a time: requests that arrive meanwhile wait here and go, as
    # one batch, to the first worker free -- never behind another worker's slow write.
    prefetch = 0

    def __init__(
        self, max_requests: int = 64, max_spans: int = 50_000, batch_wait_s: float = 0.0
    ) -> None:
        self.max_requests, self.max_spans = max_requests, max_spans
        # Every sender waits for its answer: a free worker takes whatever is waiting at once
        # (group commit); requests batch up by themselves while the workers are busy.
        self.batch_wait_s: float | None = batch_wait_s
        self._waiting: collections.deque[Ticket] = collections.deque()
        self._spans_waiting = 0
        self._ready = threading.Condition()
        self._polled: dict[int, list[Ticket]] = {}  # by polling thread: one per worker

    def submit(self, messages: list[Message]) -> Ticket | None:
        """Queue one request's messages; None when full (answer 503 and a retry delay)."""
        ticket = Ticket(messages)
        with self._ready:
            if self._waiting and (
                len(self._waiting) >= self.max_requests
                or self._spans_waiting + len(messages) > self.max_spans
            ):
                return None
            self._waiting.append(ticket)
            self._spans_waiting += len(messages)
            self._ready.notify()
        return ticket

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        with self._ready:
            while not out:
                while self._waiting and (not out or len(out) + len(self._waiting[0].messages)
                                         <= max_records):  # fmt: skip
                    ticket = self._waiting.popleft()
                    self._spans_waiting -= len(ticket.messages)
                    self._polled.setdefault(threading.get_ident(), []).append(ticket)
                    out += ticket.messages
                left = deadline - time.monotonic()
                if out or left <= 0:
                    break
                self._ready.wait(left)
        return out

    def mark(self) -> list[Ticket]:
        """The requests this thread polled since its last mark. Several workers may poll one
        OTLP source (each request is settled on its own, in any order), so that more than
        one batch is in the store at once while every sender waits for its answer."""
        with self._ready:
            return self._polled.pop(threading.get_ident(), [])

    def commit(self, mark: list[Ticket] | None = None) -> None:
        """Answer the requests of a :meth:`mark` (default: every one polled so far)."""
        for ticket in self.mark() if mark is None else mark:
            ticket.settle()

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def lag(self) -> int | None:
        with self._ready:
            return self._spans_waiting

    def close(self) -> None:
        """Requests still queued are answered 503 by their receivers' timeouts."""
