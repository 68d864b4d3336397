"""The shape every source has: poll bounded batches, commit each once it is stored."""

from __future__ import annotations

from typing import Any, Protocol

from ._records import Message

__all__ = ["Source"]


class Source(Protocol):
    """A stream of messages with at-least-once delivery.

    ``poll`` returns at most ``max_records`` messages after waiting at most ``timeout_s``;
    ``mark`` snapshots what everything polled so far would acknowledge, and ``commit(mark)``
    acknowledges it (called only after that batch was stored or dead-lettered, in polling
    order; ``commit()`` acknowledges everything polled so far). What was polled but never
    committed comes again after a restart. ``prefetch`` is how many more batches may be
    polled while earlier ones are still being stored (0 when a commit cannot be limited to
    a mark). ``wait`` is called instead of ``poll`` while the store is slow or failing: it
    must keep the source alive (a Kafka group membership) without taking in more messages.
    ``batch_wait_s`` overrides the collector's ``batch_wait_s`` for this source.
    """

    name: str
    prefetch: int
    batch_wait_s: float | None  # how long to gather a batch; None: the collector's setting

    def poll(self, max_records: int, timeout_s: float) -> list[Message]: ...

    def mark(self) -> Any: ...

    def commit(self, mark: Any = None) -> None: ...

    def wait(self, seconds: float) -> None: ...

    def lag(self) -> int | None: ...

    def close(self) -> None: ...
