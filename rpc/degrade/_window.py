"""A rolling window of call outcomes in fixed buckets: bounded memory, O(1) per call.

rpc keeps its own windows (it cannot import ``instrument``). The window spans
``seconds`` in ``buckets`` slices; a slice older than the window is emptied the
first time the clock passes it, so the totals always cover the last ``seconds``
(to within one slice).

The counts are running totals since the window was made (``total_*``), and each
slice keeps the totals as they were when it began (its *mark*): the window's count
is the total minus the mark of its oldest slice. So counting a call is one integer
increment, and passing into a new slice (at most once per slice width) copies the
totals into the marks of the slices passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RollingWindow"]


class RollingWindow:
    """Counts of calls, failures and slow calls over the last ``seconds`` (not thread-safe:
    the breaker that owns it holds its lock).

    ``edge`` is when the current slice ends (on the window's clock): a caller that knows
    the time may count a call with ``total_calls += 1`` while ``now < edge`` (the
    breaker's closed path does); otherwise :meth:`add`."""

    __slots__ = ("_clock", "_epoch", "_mark_calls", "_mark_failures", "_mark_slow", "_n",
                 "_width", "base_calls", "base_failures", "base_slow", "edge", "total_calls",
                 "total_failures", "total_slow")  # fmt: skip

    def __init__(
        self, seconds: float, buckets: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._n = buckets
        self._width = seconds / buckets
        self._clock = clock
        self.total_calls = self.total_failures = self.total_slow = 0
        self._mark_calls = [0] * buckets  # the totals when each slice began
        self._mark_failures = [0] * buckets
        self._mark_slow = [0] * buckets
        self.base_calls = self.base_failures = self.base_slow = 0  # marks of the oldest slice
        self._epoch = int(clock() / self._width)
        self.edge = (self._epoch + 1) * self._width

    @property
    def calls(self) -> int:
        return self.total_calls - self.base_calls

    @property
    def failures(self) -> int:
        return self.total_failures - self.base_failures

    @property
    def slow(self) -> int:
        return self.total_slow - self.base_slow

    def add(self, failed: bool, slow: bool, now: float | None = None) -> None:
        """Count one call (``now``: the clock's reading, when the caller has it)."""
        if now is None:
            now = self._clock()
        if now >= self.edge:
            self._advance(now)
        self.total_calls += 1
        if failed:
            self.total_failures += 1
        if slow:
            self.total_slow += 1

    def refresh(self) -> None:
        """Drop the slices the clock has left behind (before reading the totals)."""
        now = self._clock()
        if now >= self.edge:
            self._advance(now)

    def reset(self) -> None:
        """Forget every call so far (the totals run on; every mark catches up with them)."""
        calls, failures, slow = self.total_calls, self.total_failures, self.total_slow
        self._mark_calls[:] = [calls] * self._n
        self._mark_failures[:] = [failures] * self._n
        self._mark_slow[:] = [slow] * self._n
        self.base_calls, self.base_failures, self.base_slow = calls, failures, slow

    def _advance(self, now: float) -> None:
        # At least one slice on: ``now >= edge`` decides, whatever the float division says.
        epoch = max(int(now / self._width), self._epoch + 1)
        n = self._n
        calls, failures, slow = self.total_calls, self.total_failures, self.total_slow
        for e in range(max(self._epoch + 1, epoch - n + 1), epoch + 1):
            i = e % n  # a slice begins: nothing counted in it yet
            self._mark_calls[i] = calls
            self._mark_failures[i] = failures
            self._mark_slow[i] = slow
        oldest = (epoch + 1) % n  # the slice epoch - n + 1: the window's first
        self.base_calls = self._mark_calls[oldest]
        self.base_failures = self._mark_failures[oldest]
        self.base_slow = self._mark_slow[oldest]
        self._epoch = epoch
        self.edge = (epoch + 1) * self._width
