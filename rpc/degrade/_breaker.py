"""The circuit breaker: closed → open → half-open → closed (or open again).

Unlike Sentinel, whose half-open state lets exactly one probe decide, a breaker
admits ``probes`` calls and closes only when ``probes_to_close`` of them succeed
(resilience4j's rule). Every permit carries the breaker's epoch (bumped on each
change of state), so a call admitted before a change never counts after it: a
slow straggler from the closed state cannot close a half-open breaker.

A :class:`BreakerBoard` holds the breakers of one consumer by (service, method,
provider), bounded; :func:`breaker_states` lists every live board's breakers for a
dashboard.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .._errors import UnavailableError
from ._rules import BreakerRules
from ._window import RollingWindow

__all__ = [
    "CLOSED",
    "DENIED",
    "HALF_OPEN",
    "OPEN",
    "WHILE_CLOSED",
    "BreakerBoard",
    "CircuitBreaker",
    "CircuitOpenError",
    "breaker_states",
]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
DENIED = -1
WHILE_CLOSED = -2  # the permit of a call admitted without asking, its breaker being closed


class CircuitOpenError(UnavailableError):
    """A breaker refused the call (UNAVAILABLE: no provider of it may be tried now)."""


class CircuitBreaker:
    """One breaker. :meth:`acquire` before a call (a permit, or :data:`DENIED`),
    :meth:`record` after it with that permit, :meth:`release` if it never ran."""

    def __init__(self, rules: BreakerRules, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window = RollingWindow(rules.window, rules.buckets, clock)
        self.rules = rules
        self.state = CLOSED
        self.epoch = 0
        self.since = time.time()  # wall clock of the last change, for people
        self.opened = 0  # how many times it opened
        self.refused = 0
        self._changed_at = clock()
        self._admitted = self._succeeded = self._failed = 0
        self.on_change: Callable[[CircuitBreaker], None] | None = None  # told under the lock

    @property
    def rules(self) -> BreakerRules:
        return self._rules

    @rules.setter
    def rules(self, rules: BreakerRules) -> None:
        self._rules = rules
        # What :meth:`passed` compares, read off the rules once.
        self._min_calls = rules.min_calls
        self._slow_call = rules.slow_call if rules.slow_ratio is not None else math.inf
        self._quick = False  # the window was checked against other rules: check it again

    @property
    def timed(self) -> bool:
        """Does a call's duration matter (a slow-call rule)? If not, callers need not time it."""
        return self._rules.slow_ratio is not None

    def allows(self) -> bool:
        """Would :meth:`acquire` admit a call now? (does not take a permit)"""
        state = self.state
        if state is CLOSED:
            return True
        elapsed = self._clock() - self._changed_at
        if state is OPEN:
            return elapsed >= self.rules.open_for
        return self._admitted < self.rules.probes or elapsed >= self.rules.open_for

    def acquire(self) -> int:
        """A permit (the epoch) or :data:`DENIED`; an open breaker past its wait turns half-open."""
        if self.state is CLOSED:
            return self.epoch
        with self._lock:
            now = self._clock()
            if self.state is OPEN:
                if now - self._changed_at < self.rules.open_for:
                    self.refused += 1
                    return DENIED
                self._change(HALF_OPEN, now)
            elif self.state is HALF_OPEN and self._admitted >= self.rules.probes:
                if now - self._changed_at < self.rules.open_for:
                    self.refused += 1
                    return DENIED
                self._change(HALF_OPEN, now)  # the probes never reported: new probes
            elif self.state is CLOSED:
                return self.epoch
            self._admitted += 1
            return self.epoch

    def record(
        self, permit: int, failed: bool, seconds: float, now: float | None = None
    ) -> str | None:
        """Count one finished call; the new state if this call changed it. ``permit`` is
        what :meth:`acquire` gave, or :data:`WHILE_CLOSED` for a call admitted unasked
        while the breaker was closed (counted only if it still is); ``now``: the
        breaker's clock at the end of the call, when the caller read it."""
        rules = self._rules
        slow = seconds >= self._slow_call
        if self.state is CLOSED and (permit == WHILE_CLOSED or permit == self.epoch):
            # The common case, without the lock (counts are best-effort across threads;
            # a change of state is decided under it).
            self._window.add(failed, slow, now)
            return self._checked()
        with self._lock:
            if permit != self.epoch and (permit != WHILE_CLOSED or self.state is not CLOSED):
                return None  # admitted before the last change: it says nothing about now
            if self.state is CLOSED:
                window = self._window
                window.add(failed, slow, now)
                if self._trips(window):
                    self._change(OPEN, self._clock())
                    return OPEN
                return None
            if self.state is HALF_OPEN:
                if failed or slow:
                    self._failed += 1
                    if self._failed > rules.probes - rules.needed:
                        self._change(OPEN, self._clock())
                        return OPEN
                else:
                    self._succeeded += 1
                    if self._succeeded >= rules.needed:
                        self._change(CLOSED, self._clock())
                        return CLOSED
            return None

    def passed(self, seconds: float, now: float) -> str | None:
        """``record(WHILE_CLOSED, False, seconds, now)``, quicker: the closed state's success.

        A success cannot open a breaker whose window was checked after its last failure,
        unless the window now reaches ``min_calls`` (the ratios start to count), the
        window slid (old successes left it) or the rules changed; only those go the long
        way. Otherwise counting it is one integer increment (``seconds``: 0 if the rules
        have no slow-call rule, see :attr:`timed`)."""
        window = self._window
        if self._quick and now < window.edge and seconds < self._slow_call:
            window.total_calls += 1
            if window.total_calls - window.base_calls != self._min_calls:
                return None
            return self._checked()
        return self.record(WHILE_CLOSED, False, seconds, now)

    def _checked(self) -> str | None:
        """After counting a call while closed: open if the window says so (under the lock)."""
        if not self._trips(self._window):
            self._quick = self.state is CLOSED
            return None
        with self._lock:
            if self.state is not CLOSED:
                return None
            self._change(OPEN, self._clock())
            return OPEN

    def release(self, permit: int) -> None:
        """A permitted call that never ran (cancelled): give its place back."""
        with self._lock:
            if permit == self.epoch and self.state is HALF_OPEN and self._admitted > 0:
                self._admitted -= 1

    def _trips(self, window: RollingWindow) -> bool:
        rules = self.rules
        if rules.error_count is not None and window.failures >= rules.error_count:
            return True
        if window.calls < rules.min_calls:
            return False
        if rules.error_ratio is not None and window.failures >= rules.error_ratio * window.calls:
            return True
        return rules.slow_ratio is not None and window.slow >= rules.slow_ratio * window.calls

    def _change(self, state: str, now: float) -> None:
        if state is OPEN and self.state is not OPEN:
            self.opened += 1
        self.state = state
        self.epoch += 1
        self._changed_at = now
        self.since = time.time()
        self._admitted = self._succeeded = self._failed = 0
        self._quick = False  # closed again: the first call's check sets it
        if state is CLOSED:
            self._window.reset()
        if self.on_change is not None:
            self.on_change(self)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._window.refresh()
            window = self._window
            return {
                "state": self.state,
                "since": self.since,
                "calls": window.calls,
                "failures": window.failures,
                "slow": window.slow,
                "opened": self.opened,
                "refused": self.refused,
                "probes_admitted": self._admitted if self.state is HALF_OPEN else 0,
            }


BoardKey = tuple[str, str, str]  # service, method, provider


class BreakerBoard:
    """The breakers of one consumer, per (service, method, provider); at most ``max_keys``
    (the longest-closed breaker goes first, so an open one is never forgotten early)."""

    def __init__(self, name: str = "", max_keys: int = 10_000) -> None:
        self.name = name
        self.max_keys = max_keys
        self._breakers: dict[BoardKey, CircuitBreaker] = {}
        self._lock = threading.Lock()
        _BOARDS.add(self)

    def get(self, service: str, method: str, provider: str, rules: BreakerRules) -> CircuitBreaker:
        key = (service, method, provider)
        breaker = self._breakers.get(key)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.get(key)
                if breaker is None:
                    if len(self._breakers) >= self.max_keys:
                        self._evict()
                    breaker = self._breakers[key] = CircuitBreaker(rules)
        elif breaker.rules is not rules:
            breaker.rules = rules  # new settings: the state stays, the next window uses them
        return breaker

    def find(self, service: str, method: str, provider: str) -> CircuitBreaker | None:
        return self._breakers.get((service, method, provider))

    def of(self, service: str, method: str) -> dict[str, CircuitBreaker]:
        """The breakers of (service, method) by provider."""
        with self._lock:
            return {p: b for (s, m, p), b in self._breakers.items() if s == service and m == method}

    def _evict(self) -> None:
        closed = [k for k, b in self._breakers.items() if b.state is CLOSED]
        victim = min(closed or self._breakers, key=lambda k: self._breakers[k].since)
        del self._breakers[victim]

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._breakers.items())
        return [
            {"consumer": self.name, "service": s, "method": m, "provider": p, **b.snapshot()}
            for (s, m, p), b in items
        ]


_BOARDS: weakref.WeakSet[BreakerBoard] = weakref.WeakSet()


def breaker_states() -> list[dict[str, Any]]:
    """Every breaker of this process: consumer, service, method, provider, ``state``
    (closed / open / half_open), ``since`` (epoch seconds), window counts, times opened."""
    rows = [row for board in list(_BOARDS) for row in board.snapshot()]
    return sorted(rows, key=lambda r: (r["service"], r["method"], r["provider"]))
