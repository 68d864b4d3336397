"""The cluster's side of degradation: breakers around attempts, and degraded calls.

With ``breaker`` rules for a (service, method), the cluster keeps a :class:`Guard`: one
breaker per provider, and which of them are not closed (``tripped``). While none is,
a call pays a dictionary lookup and a recorded outcome: the attempt runs through the
provider's :class:`Lane`, a chain built once around that breaker, whose terminal counts
the outcome (a success: one clock read and an integer increment, see
:meth:`~rpc.degrade.CircuitBreaker.passed`). Once one
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
from functools import partial
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
    "Lane",
    "closed_circuits",
    "count_failure",
    "degraded",
    "guarded_attempt",
    "recording",
]

DEGRADED = "degraded"  # the peer of a call answered by a fallback


class Lane:
    """One provider's breaker, and the chain its attempts take while it is closed."""

    __slots__ = ("breaker", "closed", "timed")

    def __init__(self, breaker: CircuitBreaker, closed: CallNext) -> None:
        self.breaker = breaker
        self.closed = closed
        self.timed = breaker.timed  # the guard's rules are the breaker's while the lane lives


class Guard:
    """The breakers of one (service, method) under one set of rules."""

    __slots__ = ("board", "breakers", "cluster", "degrading", "lanes", "method", "rules",
                 "service", "tripped")  # fmt: skip

    def __init__(
        self,
        cluster: ClusterInvoker,
        service: str,
        method: str,
        rules: BreakerRules,
        strategy: Any,
    ) -> None:
        self.cluster = cluster
        self.board: BreakerBoard = cluster.breakers
        self.service = service
        self.method = method
        self.rules = rules
        self.degrading = Degrading(strategy, self)  # the strategy while one is not closed
        self.breakers: dict[str, CircuitBreaker] = {}
        self.lanes: dict[str, Lane] = {}
        self.tripped: set[str] = set()  # providers whose breaker is not closed
        for address in self.board.of(service, method):  # kept across a change of settings
            self.breaker(address)

    def breaker(self, address: str) -> CircuitBreaker:
        return self.lane(address).breaker

    def lane(self, address: str) -> Lane:
        lane = self.lanes.get(address)
        if lane is None:
            breaker = self.board.get(self.service, self.method, address, self.rules)
            self.breakers[address] = breaker
            closed = self.cluster.chain(recording(self.cluster, breaker))
            lane = self.lanes[address] = Lane(breaker, closed)
            breaker.on_change = lambda b: self._changed(address, b)
            self._changed(address, breaker)
        return lane

    def _changed(self, address: str, breaker: CircuitBreaker) -> None:
        if breaker.state is CLOSED:
            self.tripped.discard(address)
        else:
            self.tripped.add(address)
        if self.tripped:  # the cluster filters candidates only while some guard has one
            self.cluster.tripped.add(self)
        else:
            self.cluster.tripped.discard(self)


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
    lane = guard.lanes.get(address) or guard.lane(address)
    inv.on_failure = on_failure
    breaker = lane.breaker
    if breaker.state is CLOSED:
        return lane.closed(inv)  # the outcome is counted by the chain's terminal
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
    cluster: ClusterInvoker, breaker: CircuitBreaker, permit: int = WHILE_CLOSED
) -> CallNext:
    """The terminal of an attempt under ``breaker``: invoke, then count the outcome.

    The attempt's own frame does the counting (no coroutine around it); the clock is
    read once at the end, and also at the start only if a slow-call rule needs the
    duration."""
    invoke = cluster.invoker.invoke
    clock = time.monotonic  # the breakers' clock
    timed = breaker.timed
    finished = breaker.passed if permit == WHILE_CLOSED else partial(breaker.record, permit, False)

    async def terminal(inv: Invocation) -> Any:
        if inv.pending_events is not None:
            land_pending(inv)
        start = clock() if timed else 0.0
        try:
            result = await invoke(inv)
        except RpcError as err:
            end = clock()
            count_failure(cluster, inv, err, breaker, permit, end - start if timed else 0.0, end)
            raise
        except BaseException:
            breaker.release(permit)
            raise
        end = clock()
        changed = finished(end - start if timed else 0.0, end)
        if changed is not None:
            cluster.decided(inv, f"breaker.{changed}")
        return result

    return terminal


def count_failure(
    cluster: ClusterInvoker,
    inv: Invocation,
    err: RpcError,
    breaker: CircuitBreaker,
    permit: int,
    seconds: float,
    end: float,
) -> None:
    """A failed attempt, inside it: counted by ``breaker`` (a failure if its rules count
    the code), its change of state said on the attempt, then the strategy's hook."""
    changed = breaker.record(permit, err.code in breaker.rules.errors, seconds, end)
    if changed is not None:
        cluster.decided(inv, f"breaker.{changed}", **{"error.code": err.code})
    hook = inv.on_failure
    if hook is not None:
        hook(inv, err)


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
