"""Load balancers pick one provider per attempt; looked up by name (kind ``balancers``).

Built-ins live in :mod:`rpc.balance` and load on first use. Add others with
``@rpc.extension("balancers", name)`` or the ``callscope.balancers`` entry points
(:func:`register_balancer` is the same, kept for existing callers). A factory is
called with the service's :class:`~rpc.config.Settings` when it takes an argument,
else with none. A balancer with ``observes = True`` also gets ``started(address)``
and ``finished(address, seconds, failed)`` around each attempt.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ._directory import Provider
from ._extensions import extension_point
from ._invocation import Invocation

__all__ = ["Balancer", "get_balancer", "register_balancer"]


class Balancer(Protocol):
    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider: ...


BALANCERS = extension_point("balancers")
for _name, _target in {
    "random": "rpc.balance._basic:RandomBalancer",
    "round_robin": "rpc.balance._basic:RoundRobinBalancer",
    "sticky": "rpc.balance._basic:StickyBalancer",
    "least_active": "rpc.balance._adaptive:LeastActiveBalancer",
    "ewma": "rpc.balance._adaptive:EwmaBalancer",
    "p2c": "rpc.balance._adaptive:P2CBalancer",
    "consistent_hash": "rpc.balance._hash:ConsistentHashBalancer",
}.items():
    BALANCERS.register_lazy(_name, _target)


def register_balancer(name: str, factory: Callable[..., Balancer]) -> None:
    """Make a balancer available by name (a class or a factory)."""
    BALANCERS.register(name, factory, replace=True)


def get_balancer(name: str, settings: Any = None) -> Balancer:
    """A new balancer of the kind registered as ``name`` (each service keeps its own)."""
    factory = BALANCERS.get(name)
    if settings is not None and _takes_an_argument(factory):
        return factory(settings)  # type: ignore[no-any-return]
    return factory()  # type: ignore[no-any-return]


def _takes_an_argument(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )
