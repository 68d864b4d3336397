"""A rolling window of call outcomes in fixed buckets: bounded memory, O(1) per call.

rpc keeps its own windows (it cannot import ``instrument``). The window spans
``seconds`` in ``buckets`` slices; a slice older than the window is emptied the
first time the clock passes it, so the totals always cover the last ``seconds``
(to within one slice).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RollingWindow"]


class RollingWindow:
    """Counts of calls, failures and slow calls over the last ``seconds`` (not thread-safe:
    the breaker that owns it holds its lock)."""

    __slots__ = ("_calls", "_clock", "_epoch", "_failures", "_n", "_slow", "_width", "calls",
                 "failures", "slow")  # fmt: skip

    def __init__(
        self, seconds: float, buckets: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._n = buckets
        self._width = seconds / buckets
        self._clock = clock
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        self._epoch = int(clock() / self._width)
        self.calls = self.failures = self.slow = 0

    def add(self, failed: bool, slow: bool, now: float | None = None) -> None:
        """Count one call (``now``: the clock's reading, when the caller has it)."""
        epoch = int((self._clock() if now is None else now) / self._width)
        if epoch != self._epoch:
            self._advance(epoch)
        i = epoch % self._n
        self._calls[i] += 1
        self.calls += 1
        if failed:
            self._failures[i] += 1
            self.failures += 1
        if slow:
            self._slow[i] += 1
            self.slow += 1

    def refresh(self) -> None:
        """Drop the slices the clock has left behind (before reading the totals)."""
        epoch = int(self._clock() / self._width)
        if epoch != self._epoch:
            self._advance(epoch)

    def reset(self) -> None:
        for counts in (self._calls, self._failures, self._slow):
            counts[:] = [0] * self._n
        self.calls = self.failures = self.slow = 0

    def _advance(self, epoch: int) -> None:
        steps = min(epoch - self._epoch, self._n)
        for e in range(epoch - steps + 1, epoch + 1):
            i = e % self._n
            self.calls -= self._calls[i]
            self.failures -= self._failures[i]
            self.slow -= self._slow[i]
            self._calls[i] = self._failures[i] = self._slow[i] = 0
        self._epoch = epoch
