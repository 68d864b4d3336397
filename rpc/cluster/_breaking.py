"""The cluster's side of degradation: breakers around attempts, and degraded calls.

With ``breaker`` rules for a (service, method), the cluster keeps one breaker per
provider: :func:`closed_circuits` drops the providers whose breaker refuses calls
from the candidates (so failover picks others), :func:`guarded_attempt` takes a
permit and records the outcome inside the attempt (a change of state is an event on
its CLIENT span), and :class:`Degrading` answers with the rules' fallback when every
breaker refused. :func:`degraded` runs a fallback (a breaker's, or a mask's) through
the client chain in place of a provider, so the degraded call has its span and counts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from .._directory import Provider
from .._errors import RpcError
from .._invocation import CallNext, Invocation
from ..degrade import DENIED, BreakerRules, CircuitBreaker, CircuitOpenError, Fallback, answer
from ._tally import land_pending

if TYPE_CHECKING:
    from ._cluster import ClusterInvoker

__all__ = ["DEGRADED", "Degrading", "closed_circuits", "degraded", "guarded_attempt"]

DEGRADED = "degraded"  # the peer of a call answered by a fallback


class Degrading:
    """Wraps a strategy of a (service, method) with breaker rules: refused → fallback."""

    def __init__(self, inner: Any, rules: BreakerRules) -> None:
        self.inner = inner
        self.rules = rules
        self.settings = getattr(inner, "settings", None)

    async def invoke(self, inv: Invocation, cluster: ClusterInvoker) -> Any:
        try:
            return await self.inner.invoke(inv, cluster)
        except CircuitOpenError:
            reason = "open"
        except RpcError as err:
            if not self.rules.on_error or err.code not in self.rules.errors:
                raise
            reason = err.code
        return await degraded(cluster, inv, self.rules.fallback, "breaker.degraded", reason=reason)


def closed_circuits(
    cluster: ClusterInvoker, inv: Invocation, providers: Sequence[Provider]
) -> Sequence[Provider]:
    """``providers`` whose breaker would admit a call; none left: :class:`CircuitOpenError`."""
    board = cluster.breakers
    usable = []
    for provider in providers:
        breaker = board.find(inv.service, inv.method, provider.address)
        if breaker is None or breaker.allows():
            usable.append(provider)
    if not usable:
        raise CircuitOpenError(
            f"every provider's circuit is open for {inv.service}/{inv.method}"
            f" ({len(providers)} providers)"
        )
    return usable


def guarded_attempt(
    cluster: ClusterInvoker,
    inv: Invocation,
    provider: Provider,
    rules: BreakerRules,
    on_failure: Callable[[Invocation, Exception], None] | None,
) -> Awaitable[Any]:
    """One attempt under ``provider``'s breaker (refused: :class:`CircuitOpenError`)."""
    breaker = cluster.breakers.get(inv.service, inv.method, provider.address, rules)
    before = breaker.state
    permit = breaker.acquire()
    if permit == DENIED:
        raise CircuitOpenError(
            f"circuit {breaker.state} for {inv.service}/{inv.method} on {provider.address}"
        )
    if breaker.state is not before:
        inv.add_pending_event("breaker.half_open", provider=provider.address)
    inv.on_failure = on_failure
    return cluster.chain(_recorded(cluster, cluster.invoker.invoke, breaker, permit))(inv)


def _recorded(
    cluster: ClusterInvoker,
    invoke: Callable[[Invocation], Awaitable[Any]],
    breaker: CircuitBreaker,
    permit: int,
) -> CallNext:
    async def terminal(inv: Invocation) -> Any:
        land_pending(inv)
        start = time.perf_counter()
        try:
            result = await invoke(inv)
        except RpcError as err:
            failed = err.code in breaker.rules.errors
            changed = breaker.record(permit, failed, time.perf_counter() - start)
            if changed is not None:
                cluster.decided(inv, f"breaker.{changed}", **{"error.code": err.code})
            hook = inv.on_failure
            if hook is not None:
                hook(inv, err)
            raise
        except BaseException:
            breaker.release(permit)
            raise
        changed = breaker.record(permit, False, time.perf_counter() - start)
        if changed is not None:
            cluster.decided(inv, f"breaker.{changed}")
        return result

    return terminal


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
