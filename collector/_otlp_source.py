"""OTLP/HTTP requests as a source: the HTTP handler hands spans over and waits for the store.

Bounded: at most ``max_requests`` requests wait at once; past that the receiver answers
503 with ``Retry-After`` (OTLP exporters retry it), which is the back-pressure an SDK sees.
"""

from __future__ import annotations

import json
import queue
import threading
import time

from ._otlp import otlp_spans
from ._records import SPANS_TOPIC, Message, Rejection

__all__ = ["OtlpSource", "Ticket"]


class Ticket:
    """One request's spans: the handler waits on it; :meth:`OtlpSource.commit` settles it."""

    def __init__(self, messages: list[Message], rejected: list[str]) -> None:
        self.messages = messages
        self.rejected = rejected  # reasons, for the partial-success answer
        self.done = threading.Event()


class OtlpSource:
    name = "otlp"
    prefetch = 2

    def __init__(self, max_requests: int = 64) -> None:
        self._queue: queue.Queue[Ticket] = queue.Queue(max_requests)
        self._polled: list[Ticket] = []

    def submit(self, request: dict) -> Ticket | None:
        """Queue a decoded request; None when full (answer 503)."""
        messages, rejected = [], []
        for data, result in otlp_spans(request):
            value = json.dumps(data, default=str).encode()
            message = Message(SPANS_TOPIC, value, origin={"source": "otlp"})
            if isinstance(result, Rejection):
                message.rejection = result
                rejected.append(f"{result.code}: {result.reason}")
            else:
                message.record = result
            messages.append(message)
        ticket = Ticket(messages, rejected)
        try:
            self._queue.put_nowait(ticket)
        except queue.Full:
            return None
        return ticket

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        out: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < max_records:
            try:
                ticket = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self._polled.append(ticket)
            out += ticket.messages
            if out and self._queue.empty():
                break
        return out

    def mark(self) -> list[Ticket]:
        """The requests polled since the last mark."""
        marked, self._polled = self._polled, []
        return marked

    def commit(self, mark: list[Ticket] | None = None) -> None:
        """Answer the requests of a :meth:`mark` (default: every one polled so far)."""
        for ticket in self.mark() if mark is None else mark:
            ticket.done.set()

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def lag(self) -> int | None:
        return self._queue.qsize()

    def close(self) -> None:
        """Requests still queued are answered 503 by their handlers' timeouts."""
