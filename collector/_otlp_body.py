"""A request body taken in as it arrives, bounded before and after decompression.

The limits hold whatever the framing (``Content-Length`` or chunked): at most
``max_body`` bytes as received, at most ``max_inflated`` once decompressed -- the
inflater is never asked for more than the room left, so a 65 KB gzip that would inflate
to 64 MiB costs one limit's worth of memory and CPU, not 64 MiB -- and every byte held
counts against a :class:`ByteBudget` shared by all requests in flight.
"""

from __future__ import annotations

import threading
import zlib

__all__ = [
    "BadBody",
    "BodyTooLarge",
    "BoundedBody",
    "ByteBudget",
    "OverBudget",
    "UnsupportedEncoding",
]

_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 47}  # 47: a zlib or gzip header, detected
_IDENTITY = ("", "identity")


class BadBody(ValueError):
    """Not decodable as its Content-Encoding says (HTTP 400)."""


class BodyTooLarge(ValueError):
    """Over a size limit (HTTP 413)."""


class UnsupportedEncoding(ValueError):
    """A Content-Encoding the intake does not decode (HTTP 415)."""


class OverBudget(RuntimeError):
    """Requests in flight already hold the bytes this one needs (HTTP 503, retry later)."""


class ByteBudget:
    """Bytes all requests in flight may hold at once (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        with self._lock:
            if self.held + n > self.limit:
                raise OverBudget(
                    f"the intake holds {self.held} bytes; {n} more would pass {self.limit}"
                )
            self.held += n

    def give(self, n: int) -> None:
        with self._lock:
            self.held -= n


class BoundedBody:
    """Feed the received chunks, then :meth:`finish`; :meth:`release` gives the budget back."""

    def __init__(self, encoding: str, max_body: int, max_inflated: int, budget: ByteBudget) -> None:
        encoding = encoding.strip().lower()
        if encoding not in _IDENTITY and encoding not in _WBITS:
            raise UnsupportedEncoding(f"Content-Encoding {encoding!r} (gzip, deflate, identity)")
        self._wbits = _WBITS.get(encoding)
        self._inflater = zlib.decompressobj(self._wbits) if self._wbits else None
        self.max_body, self.max_inflated, self.budget = max_body, max_inflated, budget
        self.received = 0
        self._held = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._open = False

    def _hold(self, data: bytes) -> None:
        self.budget.take(len(data))
        self._held += len(data)
        self._parts.append(data)
        self._size += len(data)

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_body:
            raise BodyTooLarge(f"body over {self.max_body} bytes")
        if self._inflater is None:
            if self.received > self.max_inflated:
                raise BodyTooLarge(f"body over {self.max_inflated} bytes")
            self._hold(chunk)
            return
        self._inflate(chunk)

    def _inflate(self, data: bytes) -> None:
        while data:
            assert self._inflater is not None
            self._open = True  # inside a member until its end is seen
            room = self.max_inflated - self._size
            try:
                out = self._inflater.decompress(data, room + 1)
            except zlib.error as exc:
                raise BadBody(f"not valid {self._name()}: {exc}") from None
            if len(out) > room:
                raise BodyTooLarge(f"body inflates past {self.max_inflated} bytes")
            if out:
                self._hold(out)
            if self._inflater.eof:  # a member ended: what follows is another gzip member
                self._open = False
                data = self._inflater.unused_data
                self._inflater = zlib.decompressobj(self._wbits)  # type: ignore[arg-type]
                if not data.strip(b"\0"):  # zero padding after the last member
                    return
            else:
                data = self._inflater.unconsumed_tail

    def _name(self) -> str:
        return "gzip" if self._wbits == 31 else "deflate"

    def finish(self) -> bytes:
        """The whole (decompressed) body."""
        if self._open:
            raise BadBody(f"truncated {self._name()} body")
        body = b"".join(self._parts)
        self._parts = [body]
        return body

    def release(self) -> None:
        self.budget.give(self._held)
        self._held = 0
        self._parts = []
