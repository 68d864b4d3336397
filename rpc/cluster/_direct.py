"""A call that is one attempt with nothing between it and the invoker, in one frame.

A ``failfast`` call (one attempt, no failure hook) on a consumer with no client
interceptors has no span around its attempt, so what the consumer's cap and a closed
breaker do around it -- count the call in flight, time it, count its outcome -- can
all happen in the call's own frame around the invoker's await: one coroutine instead
of three (cap, breaker terminal, invoker). Whatever is not the common case (a breaker
not closed, the in-process provider, a balancer that observes attempts, a refusal by
the cap) goes the general way, through :meth:`ClusterInvoker.attempt`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._errors import RpcError
from .._invocation import Invocation
from ..degrade import CLOSED, WHILE_CLOSED
from ._breaking import count_failure
from ._tally import land_pending

if TYPE_CHECKING:
    from ._cluster import ClusterInvoker, _Plan

__all__ = ["one_attempt"]

_clock = time.monotonic  # the breakers' clock


async def one_attempt(cluster: ClusterInvoker, inv: Invocation, plan: _Plan) -> Any:
    """Run ``inv`` as a failfast call: under ``plan``'s cap and its guard's breaker."""
    inflight = plan.inflight
    if inflight is not None:
        if inflight.count >= inflight.limit:
            return await cluster.refused(inv, inflight)
        inflight.count += 1
    try:
        provider = cluster.select(inv, cluster.providers(inv))
        guard = plan.guard
        lane = None
        if guard is not None and provider is not cluster.in_process and not plan.observes:
            lane = guard.lanes.get(provider.address) or guard.lane(provider.address)
        if lane is None or lane.breaker.state is not CLOSED:
            return await cluster.attempt(inv, provider)  # no breaker, or not the common case
        breaker = lane.breaker
        inv.peer = provider.address
        if inv.pending_events is not None:
            land_pending(inv)
        timed = lane.timed
        start = _clock() if timed else 0.0
        try:
            result = await cluster.invoker.invoke(inv)
        except RpcError as err:
            end = _clock()
            seconds = end - start if timed else 0.0
            count_failure(cluster, inv, err, breaker, WHILE_CLOSED, seconds, end)
            raise
        end = _clock()
        changed = breaker.passed(end - start if timed else 0.0, end)
        if changed is not None:
            cluster.decided(inv, f"breaker.{changed}")
        return result
    finally:
        if inflight is not None:
            inflight.count -= 1
