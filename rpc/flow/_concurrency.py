"""Concurrency control on the provider: a ceiling for the server, a bulkhead per service.

The one place the provider's limits on calls at once live. Each exported service
gets a :class:`Bulkhead` (``max_concurrent`` running, ``max_queue`` waiting for a
slot); a call beyond both is shed with ``BUSY`` or, if the service configured one,
answered with a default value. The server-wide ``ceiling`` bounds every admitted
call (running or queued) across services. Admission is decided from the header,
before a task is made, so shedding costs little under overload.

Every admitted call ends exactly once: :meth:`Concurrency.release` gives back its
running slot (to the next waiter, if any) or its queue place.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import BusyError

__all__ = ["NO_DEFAULT", "Bulkhead", "Concurrency", "ConcurrencyLimit", "Shed"]

NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "NO_DEFAULT"})()


def _count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    """How many calls of one service run at once and wait; what an overflow answers.

    ``overflow_value`` (when given) is returned to shed callers instead of ``BUSY``:
    a service whose answer may be stale or empty stays useful under overload.
    """

    max_concurrent: int = 1000
    max_queue: int = 4000
    overflow_value: Any = field(default=NO_DEFAULT, compare=False)

    def __post_init__(self) -> None:
        _count("max_concurrent", self.max_concurrent, 1)
        _count("max_queue", self.max_queue, 0)

    @classmethod
    def from_dict(
        cls, doc: dict[str, Any], base: ConcurrencyLimit | None = None
    ) -> ConcurrencyLimit:
        """Read ``{"max_concurrent", "max_queue", "overflow": "busy" | {"value": v}}``."""
        base = base or cls()
        unknown = set(doc) - {"max_concurrent", "max_queue", "overflow"}
        if unknown:
            raise ValueError(f"unknown concurrency keys {sorted(unknown)}")
        overflow = doc.get("overflow", "busy")
        if overflow == "busy":
            value = NO_DEFAULT
        elif isinstance(overflow, dict) and set(overflow) == {"value"}:
            value = overflow["value"]
        else:
            raise ValueError('overflow must be "busy" or {"value": <default answer>}')
        return replace(
            base,
            max_concurrent=doc.get("max_concurrent", base.max_concurrent),
            max_queue=doc.get("max_queue", base.max_queue),
            overflow_value=value,
        )


class Shed(BusyError):
    """A call refused for lack of room (code ``BUSY``); ``value`` answers it instead if set."""

    def __init__(self, message: str, value: Any = NO_DEFAULT) -> None:
        super().__init__(message)
        self.value = value


class Bulkhead:
    """One service's slots and queue, on the event loop's thread only."""

    __slots__ = ("_waiters", "limit", "name", "queued", "running", "shed")

    def __init__(self, name: str, limit: ConcurrencyLimit) -> None:
        self.name = name
        self.limit = limit
        self.running = 0
        self.queued = 0
        self.shed = 0  # calls refused for lack of room, for KPIs and tests
        self._waiters: deque[asyncio.Future[None]] = deque()

    def enter(self) -> bool:
        """Take a slot (True: run now) or a queue place (False: :meth:`wait` first).

        Raises :class:`Shed` when both are full.
        """
        limit = self.limit
        if self.running < limit.max_concurrent and not self.queued:
            self.running += 1
            return True
        if self.queued < limit.max_queue:
            self.queued += 1
            return False
        self.shed += 1
        raise Shed(
            f"service {self.name} is busy: {self.running} running, {self.queued} queued "
            f"(limits {limit.max_concurrent} + {limit.max_queue})",
            limit.overflow_value,
        )

    async def wait(self) -> None:
        """Turn the queue place into a slot once one is free.

        Cancelled (a deadline), it gives back whatever it holds by then itself.
        """
        if self.running < self.limit.max_concurrent:  # room appeared (limits may have grown)
            self.queued -= 1
            self.running += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # the slot was handed to us as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # leave() may have dropped it already
                    self._waiters.remove(waiter)
                self.queued -= 1
            raise

    def unqueue(self) -> None:
        """A queued call ended before it waited (its deadline came first)."""
        self.queued -= 1

    def leave(self) -> None:
        """A running call ended: its slot goes to the oldest waiter, or back to the pool."""
        waiters = self._waiters
        while waiters and self.running <= self.limit.max_concurrent:
            waiter = waiters.popleft()
            if not waiter.done():
                self.queued -= 1
                waiter.set_result(None)  # the slot passes on; running stays the same
                return
        self.running -= 1

    def configure(self, limit: ConcurrencyLimit) -> None:
        """New limits, live: room that appears wakes waiters."""
        self.limit = limit
        while self._waiters and self.running < limit.max_concurrent:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.queued -= 1
                self.running += 1
                waiter.set_result(None)


class Concurrency:
    """The provider's limits on calls at once (see the module's docstring)."""

    def __init__(self, ceiling: int = 10_000, default: ConcurrencyLimit | None = None) -> None:
        self.ceiling = _count("max_inflight", ceiling, 1)
        self.default = default or ConcurrencyLimit()
        self.inflight = 0  # admitted calls, running or queued
        self.shed = 0
        self.bulkheads: dict[str, Bulkhead] = {}
        self._configured: dict[str, ConcurrencyLimit] = {}

    def bulkhead(self, service: str) -> Bulkhead:
        """The service's bulkhead (made on first ask, with its configured or default limits)."""
        head = self.bulkheads.get(service)
        if head is None:
            head = Bulkhead(service, self._configured.get(service, self.default))
            self.bulkheads[service] = head
        return head

    def configure(self, service: str, limit: ConcurrencyLimit | None) -> None:
        """Set (or with ``None`` drop back to the default) one service's limits, live."""
        if limit is None:
            self._configured.pop(service, None)
        else:
            self._configured[service] = limit
        head = self.bulkheads.get(service)
        if head is not None:
            head.configure(limit or self.default)

    def admit(self, head: Bulkhead | None) -> bool:
        """Admit a call (True: runs now; False: queued) or raise :class:`Shed`."""
        if self.inflight >= self.ceiling:
            self.shed += 1
            raise Shed(f"provider has {self.inflight} calls in flight (limit {self.ceiling})")
        if head is None:
            running = True
        elif head.running < head.limit.max_concurrent and not head.queued:
            head.running += 1  # the common case, without a call (Bulkhead.enter's first step)
            running = True
        else:
            running = head.enter()
        self.inflight += 1
        return running

    def release(self, head: Bulkhead | None, held: bool | None) -> None:
        """End an admitted call: give back its slot (``held`` True), its queue place (False),
        or nothing (None: a cancelled :meth:`Bulkhead.wait` gave its place back itself)."""
        self.inflight -= 1
        if head is not None:
            if held:
                if head._waiters:
                    head.leave()
                else:  # nobody waits for the slot (Bulkhead.leave's last step)
                    head.running -= 1
            elif held is False:
                head.unqueue()

    def snapshot(self) -> dict[str, Any]:
        """Counts for KPIs and ``config effective``: per service running, queued, shed."""
        return {
            "inflight": self.inflight,
            "ceiling": self.ceiling,
            "shed": self.shed + sum(h.shed for h in self.bulkheads.values()),
            "services": {
                name: {
                    "running": h.running,
                    "queued": h.queued,
                    "shed": h.shed,
                    "max_concurrent": h.limit.max_concurrent,
                    "max_queue": h.limit.max_queue,
                }
                for name, h in self.bulkheads.items()
            },
        }
