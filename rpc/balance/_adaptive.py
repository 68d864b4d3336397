"""Balancers that learn from the calls: least active, latency EWMA, adaptive power of two choices.

Each keeps, per provider address, the calls in flight and exponentially weighted
moving averages of latency and errors (``ProviderStats``), fed by the cluster
around every attempt (``observes = True``). They see only this consumer's calls,
so each also divides by the provider's effective weight -- which carries the
registry's weights document, computed by the pipeline from every caller's spans.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

from .._directory import Provider
from .._invocation import Invocation
from ._basic import weighted_choice

__all__ = ["EwmaBalancer", "LeastActiveBalancer", "P2CBalancer", "ProviderStats"]

DECAY_S = 10.0  # an observation's weight halves in about 7 s
# A failed call counts as at least this slow: a provider that fails fast must not look like
# the fastest one (the "black hole" of latency-based balancing).
FAILED_CALL_S = 1.0
_MAX_TRACKED = 10_000


class ProviderStats:
    """In flight, latency and error EWMAs of one provider, as this consumer saw them."""

    __slots__ = ("active", "errors", "latency", "seen", "updated")

    def __init__(self) -> None:
        self.active = 0
        self.latency = 0.0  # seconds
        self.errors = 0.0  # 0..1
        self.seen = 0
        self.updated = time.monotonic()

    def record(self, seconds: float, failed: bool) -> None:
        now = time.monotonic()
        keep = math.exp(-(now - self.updated) / DECAY_S) if self.seen else 0.0
        keep = min(keep, 0.9)  # a burst of samples still moves the average
        if failed:
            seconds = max(seconds, FAILED_CALL_S)
        self.latency = keep * self.latency + (1 - keep) * seconds
        self.errors = keep * self.errors + (1 - keep) * (1.0 if failed else 0.0)
        self.seen += 1
        self.updated = now


class _Observing:
    """Per-address stats, fed by :meth:`started` / :meth:`finished`."""

    observes = True

    def __init__(self) -> None:
        self.stats: dict[str, ProviderStats] = {}

    def _stats(self, address: str) -> ProviderStats:
        stats = self.stats.get(address)
        if stats is None:
            if len(self.stats) >= _MAX_TRACKED:
                self.stats.clear()
            stats = self.stats[address] = ProviderStats()
        return stats

    def started(self, address: str) -> None:
        self._stats(address).active += 1

    def finished(self, address: str, seconds: float, failed: bool) -> None:
        stats = self._stats(address)
        stats.active = max(0, stats.active - 1)
        stats.record(seconds, failed)


class LeastActiveBalancer(_Observing):
    """The provider with the fewest calls in flight from this consumer; ties by weight."""

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        stats = self.stats
        least = min(stats[p.address].active if p.address in stats else 0 for p in providers)
        tied = [
            p for p in providers if (stats[p.address].active if p.address in stats else 0) == least
        ]
        return weighted_choice(tied)


class EwmaBalancer(_Observing):
    """The provider with the lowest expected wait: latency EWMA * (in flight + 1) / weight.
    A provider not measured yet counts as the fastest, so it gets tried."""

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        costs = [self._cost(p) for p in providers]  # once: a cost fades as time passes
        best = min(costs)
        cheapest = [p for p, cost in zip(providers, costs, strict=True) if cost == best]
        return weighted_choice(cheapest)

    def _cost(self, provider: Provider) -> float:
        stats = self.stats.get(provider.address)
        if stats is None or not stats.seen:
            return 0.0
        # Faded by age as P2C's cost is: a provider shunned after failures (each counts as
        # FAILED_CALL_S) is tried again once nothing has measured it for a while.
        fade = math.exp(-(time.monotonic() - stats.updated) / DECAY_S)
        return stats.latency * fade * (stats.active + 1) / max(provider.weight, 1)


class P2CBalancer(_Observing):
    """Power of two choices: two providers drawn by weight, the cheaper one wins, where cost
    is latency EWMA * (in flight + 1) * (1 + 10 * error EWMA) / weight."""

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        if len(providers) == 1:
            return providers[0]
        a = weighted_choice(providers)
        b = weighted_choice(providers)
        if a is b:
            others = [p for p in providers if p is not a]
            b = random.choice(others)
        return a if self._cost(a) <= self._cost(b) else b

    def _cost(self, provider: Provider) -> float:
        stats = self.stats.get(provider.address)
        if stats is None or not stats.seen:
            return 0.0
        # An old verdict fades as the averages would have, so a provider shunned for its
        # errors is tried again once they are DECAY_S old (it gets no calls to update them).
        fade = math.exp(-(time.monotonic() - stats.updated) / DECAY_S)
        penalty = 1.0 + 10.0 * stats.errors * fade
        latency = stats.latency * fade
        return (latency + 1e-4) * (stats.active + 1) * penalty / max(provider.weight, 1)
