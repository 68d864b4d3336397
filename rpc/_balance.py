"""Load balancers pick one provider per attempt; looked up by name.

Built-ins: ``round_robin`` (smooth weighted) and ``random`` (weighted). Add
others with :func:`register_balancer` or the ``callscope.balancers`` entry points.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Protocol

from ._directory import Provider
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


_FACTORIES: dict[str, Callable[[], Balancer]] = {
    "random": RandomBalancer,
    "round_robin": RoundRobinBalancer,
}


def register_balancer(name: str, factory: Callable[[], Balancer]) -> None:
    """Make a balancer available by name (a class or a zero-argument factory)."""
    _FACTORIES[name] = factory


def get_balancer(name: str) -> Balancer:
    factory = _FACTORIES.get(name)
    if factory is None:
        for ep in entry_points(group="callscope.balancers", name=name):
            factory = ep.load()
            _FACTORIES[name] = factory
    if factory is None:
        raise LookupError(f"no balancer {name!r} (known: {', '.join(sorted(_FACTORIES))})")
    return factory()
