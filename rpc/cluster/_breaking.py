"""The cluster's side of degradation: breakers around attempts, and degraded calls.

With ``breaker`` rules for a (service, method), the cluster keeps a :class:`Guard`: one
breaker per provider, and which of them are not closed (``tripped``). While none is,
a call pays a dictionary lookup and a recorded outcome: the attempt runs through a
chain built once, whose terminal counts the outcome in the provider's window. Once one
trips, :func:`closed_circuits` drops the providers whose breaker refuses from the
candidates (so failover picks others), an attempt takes a permit
(:func:`guarded_attempt`), and :class:`Degrading` answers with the rules' fallback when
every breaker refused. Changes of state are events on the attempt's CLIENT span.
:func:`degraded` runs a fallback (a breaker's, or a mask's) through the client chain in
place of a provider, so the degraded call has its span and counts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._directory import Provider
from .._errors import RpcError
from .._invocation import CallNext, Invocation
from ..degrade import (
    CLOSED,
    DENIED,
    WHILE_CLOSED,
    BreakerBoard,
    BreakerRules,
    CircuitBreaker,
    CircuitOpenError,
    Fallback,
    answer,
)
from ._tally import land_pending

if TYPE_CHECKING:
    from ._cluster import ClusterInvoker

__all__ = [
    "DEGRADED",
    "Degrading",
    "Guard",
    "closed_circuits",
    "degraded",
    "guarded_attempt",
    "recording",
]

DEGRADED = "degraded"  # the peer of a call answered by a fallback


class Guard:
    """The breakers of one (service, method) under one set of rules."""

    __slots__ = ("board", "breakers", "degrading", "method", "rules", "service", "tripped")

    def __init__(
        self, board: BreakerBoard, service: str, method: str, rules: BreakerRules, strategy: Any
    ) -> None:
        self.board = board
        self.service = service
        self.method = method
        self.rules = rules
        self.degrading = Degrading(strategy, self)  # the strategy while one is not closed
        self.breakers: dict[str, CircuitBreaker] = {}
        self.tripped: set[str] = set()  # providers whose breaker is not closed
        for address in board.of(service, method):  # kept across a change of settings
            self.breaker(address)

    def breaker(self, address: str) -> CircuitBreaker:
        breaker = self.breakers.get(address)
        if breaker is None:
            breaker = self.board.get(self.service, self.method, address, self.rules)
            self.breakers[address] = breaker
            breaker.on_change = lambda b: self._changed(address, b)
            self._changed(address, breaker)
        return breaker

    def _changed(self, address: str, breaker: CircuitBreaker) -> None:
        if breaker.state is CLOSED:
            self.tripped.discard(address)
        else:
            self.tripped.add(address)


class Degrading:
    """A strategy whose refusals by the breakers (or, with ``on_error``, counted failures)
    are answered by the rules' fallback: used while a breaker of the guard is not closed."""

    def __init__(self, inner: Any, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard
        self.settings = getattr(inner, "settings", None)

    async def invoke(self, inv: Invocation, cluster: ClusterInvoker) -> Any:
        rules = self.guard.rules
        try:
            return await self.inner.invoke(inv, cluster)
        except CircuitOpenError:
            reason = "open"
        except RpcError as err:
            if not rules.on_error or err.code not in rules.errors:
                raise
            reason = err.code
        return await degraded(cluster, inv, rules.fallback, "breaker.degraded", reason=reason)


def closed_circuits(
    guard: Guard, inv: Invocation, providers: Sequence[Provider]
) -> Sequence[Provider]:
    """``providers`` whose breaker would admit a call; none left: :class:`CircuitOpenError`."""
    tripped = guard.tripped
    usable = [
        p for p in providers if p.address not in tripped or guard.breakers[p.address].allows()
    ]
    if not usable:
        raise CircuitOpenError(
            f"every provider's circuit is open for {inv.service}/{inv.method}"
            f" ({len(providers)} providers)"
        )
    return usable


def guarded_attempt(
    cluster: ClusterInvoker,
    guard: Guard,
    inv: Invocation,
    provider: Provider,
    on_failure: Callable[[Invocation, Exception], None] | None,
) -> Awaitable[Any]:
    """One attempt under ``provider``'s breaker (refused: :class:`CircuitOpenError`)."""
    address = provider.address
    breaker = guard.breakers.get(address) or guard.breaker(address)
    inv.on_failure = on_failure
    if breaker.state is CLOSED:
        return cluster.recorded(inv)  # the outcome is counted by the chain's terminal
    before = breaker.state
    permit = breaker.acquire()
    if permit == DENIED:
        raise CircuitOpenError(
            f"circuit {breaker.state} for {inv.service}/{inv.method} on {address}"
        )
    if breaker.state is not before:
        inv.add_pending_event("breaker.half_open", provider=address)
    return cluster.chain(recording(cluster, breaker, permit))(inv)


def recording(
    cluster: ClusterInvoker, breaker: CircuitBreaker | None = None, permit: int = WHILE_CLOSED
) -> CallNext:
    """The terminal of an attempt under a breaker: invoke, then count the outcome (the
    breaker of ``inv``'s peer in its guard when none is given)."""
    invoke = cluster.invoker.invoke
    clock = time.monotonic  # the breakers' clock: read once at each end of the call

    guards = cluster.guards

    async def terminal(inv: Invocation) -> Any:
        if inv.pending_events is not None:
            land_pending(inv)
        counted = breaker
        if counted is None:
            guard = guards().get((inv.service, inv.method))
            counted = None if guard is None else guard.breakers.get(inv.peer)
            if counted is None:  # the settings changed meanwhile: nothing to count in
                return await _hooked_invoke(invoke, inv)
        start = clock()
        try:
            result = await invoke(inv)
        except RpcError as err:
            end = clock()
            failed = err.code in counted.rules.errors
            changed = counted.record(permit, failed, end - start, end)
            if changed is not None:
                cluster.decided(inv, f"breaker.{changed}", **{"error.code": err.code})
            hook = inv.on_failure
            if hook is not None:
                hook(inv, err)
            raise
        except BaseException:
            counted.release(permit)
            raise
        end = clock()
        changed = counted.record(permit, False, end - start, end)
        if changed is not None:
            cluster.decided(inv, f"breaker.{changed}")
        return result

    return terminal


async def _hooked_invoke(invoke: Callable[[Invocation], Awaitable[Any]], inv: Invocation) -> Any:
    try:
        return await invoke(inv)
    except RpcError as err:
        if inv.on_failure is not None:
            inv.on_failure(inv, err)
        raise


def degraded(
    cluster: ClusterInvoker, inv: Invocation, fallback: Fallback, decision: str, **attributes: Any
) -> Awaitable[Any]:
    """Answer ``inv`` with ``fallback`` through the client chain (peer ``degraded``)."""
    inv.peer = DEGRADED
    inv.on_failure = None
    inv.add_pending_event(decision, action=fallback.action, **attributes)
    cluster.counters[(inv.service, decision)] += 1
    why = "masked" if decision.startswith("mask") else "degraded (circuit open)"

    async def terminal(inv: Invocation) -> Any:
        land_pending(inv)
        return await answer(fallback, inv.service, inv.method, inv.args, inv.kwargs, why)

    return cluster.chain(terminal)(inv)
