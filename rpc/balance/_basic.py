"""Balancers that need no feedback: weighted random, smooth weighted round robin, sticky."""

from __future__ import annotations

import random as _random
from collections.abc import Sequence

from .._directory import Provider
from .._invocation import Invocation

__all__ = ["RandomBalancer", "RoundRobinBalancer", "StickyBalancer", "weighted_choice"]


def weighted_choice(providers: Sequence[Provider]) -> Provider:
    """One provider with probability proportional to its weight (uniform if all equal or 0)."""
    if len(providers) == 1:
        return providers[0]
    first = providers[0].weight
    if all(p.weight == first for p in providers) or not any(p.weight > 0 for p in providers):
        return _random.choice(providers)
    return _random.choices(providers, [max(p.weight, 0) for p in providers])[0]


class RandomBalancer:
    """Weighted random; uniform when weights are equal."""

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        return weighted_choice(providers)


class RoundRobinBalancer:
    """Smooth weighted round robin (as nginx): even spread, weights respected."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self._uniform: tuple[Sequence[Provider] | None, bool] = (None, False)
        self._turn = 0

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        if len(providers) == 1:
            return providers[0]
        seen, uniform = self._uniform
        if seen is not providers:  # equal weights make it a plain rotation: check once per list
            first = providers[0].weight
            uniform = first > 0 and all(p.weight == first for p in providers)
            self._uniform = (providers, uniform)
        if uniform:
            self._turn = turn = self._turn + 1
            return providers[turn % len(providers)]
        total = 0
        best: Provider | None = None
        best_score = 0
        current = self._current
        for p in providers:
            weight = max(p.weight, 0)
            score = current.get(p.address, 0) + weight
            current[p.address] = score
            total += weight
            if best is None or score > best_score:
                best, best_score = p, score
        assert best is not None
        current[best.address] = best_score - total
        if len(current) > 4 * len(providers):  # forget providers that left
            live = {p.address for p in providers}
            for address in [a for a in current if a not in live]:
                del current[address]
        return best


class StickyBalancer:
    """Keeps sending to the provider it chose while that one is listed (per service: each
    service has its own balancer); chooses again, by weight, when it leaves."""

    def __init__(self) -> None:
        self.current: str | None = None

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        current = self.current
        if current is not None:
            for provider in providers:
                if provider.address == current:
                    return provider
        chosen = weighted_choice(providers)
        self.current = chosen.address
        return chosen
