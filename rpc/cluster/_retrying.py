"""Strategies that try again: ``failover`` (another provider) and ``failback`` (per error code).

Both decide inside the failed attempt (its CLIENT span still open), so the
decision -- ``retry`` with the next attempt's number, or ``retry.stop`` with the
reason -- is an event on the span of the attempt that failed. Neither retries a
call in doubt (a timeout, or a link lost after sending) unless the method is
declared idempotent, and both spend the service's retry budget.
"""

from __future__ import annotations

import time
from typing import Any

from .._errors import RpcError
from .._invocation import Invocation
from ..config import Settings
from ._cluster import CLUSTERS, ClusterInvoker, in_doubt

__all__ = ["Failback", "Failover"]


class _Call:
    """One call's attempts: which providers were tried, and what was decided last."""

    __slots__ = ("action", "cluster", "deadline", "decided", "strategy", "tried")

    def __init__(self, strategy: _Retrying, cluster: ClusterInvoker, deadline: float | None):
        self.strategy = strategy
        self.cluster = cluster
        self.deadline = deadline
        self.tried: list[str] = []
        self.action = "error"
        self.decided = False

    def decide(self, inv: Invocation, error: Exception) -> None:
        self.decided = True
        self.action = "error"
        if isinstance(error, RpcError):
            self.action = self.strategy.decide(inv, error, self)


class _Retrying:
    name = ""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    def action_for(self, error: RpcError) -> str:
        """``retry`` (same provider), ``switch`` (another), ``ignore`` or ``error``."""
        raise NotImplementedError

    def decide(self, inv: Invocation, error: RpcError, call: _Call) -> str:
        action = self.action_for(error)
        if action not in ("retry", "switch"):
            if action == "ignore":
                call.cluster.decided(inv, f"{self.name}.ignore", **{"error.code": error.code})
            return action
        settings = self.settings
        reason = None
        if inv.attempt > settings.retries:
            reason = "retries exhausted"
        elif in_doubt(error) and not settings.idempotent:
            reason = "in doubt and not idempotent"
        elif call.deadline is not None and time.monotonic() >= call.deadline:
            reason = "deadline passed"
        if not call.cluster.budget(inv.service).failed() and reason is None:
            reason = "retry budget exhausted"
        if reason is not None:
            call.cluster.decided(inv, "retry.stop", reason=reason, **{"error.code": error.code})
            return "error"
        call.cluster.decided(
            inv, "retry", action=action, next_attempt=inv.attempt + 1, **{"error.code": error.code}
        )
        return action

    async def invoke(self, inv: Invocation, cluster: ClusterInvoker) -> Any:
        settings = self.settings
        call = _Call(self, cluster, inv.deadline)
        providers = cluster.providers(inv)
        provider = cluster.select(inv, providers)
        while True:
            call.tried.append(provider.address)
            call.decided = False
            if settings.attempt_timeout is not None:
                inv.deadline = _sooner(call.deadline, time.monotonic() + settings.attempt_timeout)
            try:
                result = await cluster.attempt(inv, provider, call.decide)
            except RpcError as err:
                if not call.decided:  # failed outside the invoker (an interceptor said no)
                    call.decide(inv, err)
                if call.action == "ignore":
                    return settings.failback_default
                if call.action not in ("retry", "switch"):
                    raise
                inv.attempt += 1
                if call.action == "switch":
                    providers = cluster.providers(inv)  # the directory may have dropped one
                    provider = cluster.select(inv, providers, call.tried)
                continue
            cluster.budget(inv.service).succeeded()
            return result


def _sooner(deadline: float | None, other: float) -> float:
    return other if deadline is None else min(deadline, other)


@CLUSTERS.register("failover")
class Failover(_Retrying):
    """On a retriable failure, try a provider not tried yet, up to ``retries`` more times."""

    name = "failover"

    def action_for(self, error: RpcError) -> str:
        return "switch" if error.retriable else "error"


@CLUSTERS.register("failback")
class Failback(_Retrying):
    """The seed's failback: per error code (``failback``, ``"*"`` for the rest) ignore and
    return ``failback_default``, return the error, retry the same provider, or switch."""

    name = "failback"

    def action_for(self, error: RpcError) -> str:
        policy = self.settings.failback
        return policy.get(error.code) or policy.get("*", "error")
