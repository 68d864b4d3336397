"""Load balancers pick one provider per attempt; looked up by name.

Built-ins: ``round_robin`` (smooth weighted) and ``random`` (weighted). Add
others with ``@rpc.extension("balancers", name)`` or the ``callscope.balancers``
entry points (:func:`register_balancer` is the same, kept for existing callers).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence
from typing import Protocol

from ._directory import Provider
from ._extensions import extension_point
from ._invocation import Invocation

__all__ = ["Balancer", "get_balancer", "register_balancer"]


class Balancer(Protocol):
    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider: ...


class RandomBalancer:
    """Weighted random; uniform when weights are equal."""

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        if len(providers) == 1:
            return providers[0]
        weights = [max(p.weight, 0) for p in providers]
        if not any(weights) or len(set(weights)) == 1:
            return _random.choice(providers)
        return _random.choices(providers, weights)[0]


class RoundRobinBalancer:
    """Smooth weighted round robin (as nginx): even spread, weights respected."""

    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        if len(providers) == 1:
            return providers[0]
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


BALANCERS = extension_point("balancers")
BALANCERS.register("random", RandomBalancer)
BALANCERS.register("round_robin", RoundRobinBalancer)


def register_balancer(name: str, factory: Callable[[], Balancer]) -> None:
    """Make a balancer available by name (a class or a zero-argument factory)."""
    BALANCERS.register(name, factory, replace=True)


def get_balancer(name: str) -> Balancer:
    """A new balancer of the kind registered as ``name`` (each client keeps its own state)."""
    return BALANCERS.get(name)()
