"""Many deadlines, one timer.

Arming a loop timer per call costs more than the rest of a small call's
bookkeeping; instead each side keeps its deadlines in a heap and arms a single
timer at the earliest one. Entries of calls that ended are dropped lazily, and
the heap is compacted when they dominate, so memory stays bounded by the calls
in flight. At most ``PER_TURN`` deadlines are handled in one loop iteration: each
expiry wakes a task, and thousands woken at once would all run in the next one.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from typing import Any

PER_TURN = 128


class Deadlines:
    """Call ``expire(item)`` for each item still registered when its time comes."""

    __slots__ = ("_armed_at", "_expire", "_heap", "_live", "_loop", "_seq", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[Any], None]) -> None:
        self._loop = loop
        self._expire = expire
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, Any] = {}
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def add(self, when: float, item: Any) -> int:
        """Watch ``item`` until loop time ``when``; returns a key for :meth:`discard`."""
        seq = self._seq = self._seq + 1
        self._live[seq] = item
        heapq.heappush(self._heap, (when, seq))
        if when < self._armed_at:
            self._arm(when)
        elif len(self._heap) > 2 * len(self._live) + 256:
            self._compact()
        return seq

    def discard(self, key: int) -> None:
        """The call ended in time: forget it."""
        self._live.pop(key, None)

    def __len__(self) -> int:
        return len(self._live)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf
        self._heap.clear()
        self._live.clear()

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._armed_at = when

    def _fire(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        heap, live = self._heap, self._live
        now = self._loop.time()
        due = []
        while heap and (heap[0][0] <= now or heap[0][1] not in live):
            _, seq = heapq.heappop(heap)
            item = live.pop(seq, None)
            if item is not None:
                due.append(item)
                if len(due) == PER_TURN:
                    break
        if heap:
            self._arm(max(heap[0][0], now))
        for item in due:
            self._expire(item)

    def _compact(self) -> None:
        live = self._live
        self._heap = [entry for entry in self._heap if entry[1] in live]
        heapq.heapify(self._heap)
