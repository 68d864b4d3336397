"""The local side of a leased quota: a token bucket spent with no remote call per request.

The lease thread sets :meth:`QuotaBucket.lease` (a rate good until a deadline, and the
rate to fall back to after it); the provider's event loop calls :meth:`QuotaBucket.take`
per request. Plain attribute writes and reads, no lock: the loop is the only spender,
and a rate swapped mid-refill costs at most one refill's worth of accuracy. The
deadline lives here, not in the lease thread, so a lease thread stuck on an
unreachable registry still falls back on time.
"""

from __future__ import annotations

import time

__all__ = ["QuotaBucket"]

_now = time.monotonic  # one global lookup on the hot path (and a clock tests can set)


class QuotaBucket:
    """Calls per second at a leased ``rate``, at most ``burst_s`` seconds' worth at once.

    ``arrivals`` counts every call offered (admitted or not): the demand reported when
    the lease is renewed. ``refused`` counts the refusals.
    """

    __slots__ = ("arrivals", "burst_s", "fallback", "rate", "refused", "stamp", "tokens", "until")

    def __init__(self, rate: float, burst_s: float, fallback: float | None = None) -> None:
        self.rate = rate
        self.burst_s = burst_s
        self.fallback = rate if fallback is None else fallback
        self.until = float("inf")
        self.stamp = _now()
        self.tokens = self.capacity(rate)
        self.arrivals = 0
        self.refused = 0

    def capacity(self, rate: float) -> float:
        """At least one call's worth (else a slow rate would never admit anything)."""
        return max(1.0, rate * self.burst_s) if rate > 0 else 0.0

    def lease(self, rate: float, until: float, fallback: float) -> None:
        """Spend at ``rate`` until ``until`` (monotonic), then at ``fallback``."""
        self.fallback = fallback
        self.until = until
        self.rate = rate
        self.tokens = min(self.tokens, self.capacity(max(rate, fallback)))

    def current_rate(self, now: float) -> float:
        return self.rate if now < self.until else self.fallback

    def take(self) -> bool:
        """Admit one call if a token is left; O(1), no lock, no allocation but floats."""
        self.arrivals += 1
        now = _now()
        rate = self.rate if now < self.until else self.fallback
        tokens = self.tokens + (now - self.stamp) * rate
        cap = rate * self.burst_s
        if cap < 1.0:
            cap = 1.0 if rate > 0 else 0.0
        if tokens > cap:
            tokens = cap
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            self.refused += 1
            return False
        self.tokens = tokens - 1.0
        return True

    def give_back(self) -> None:
        """Undo one :meth:`take` that a narrower bucket then refused."""
        self.tokens += 1.0
