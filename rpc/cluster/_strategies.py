"""Fault-tolerance strategies without retries, each a small class found by name (kind ``clusters``).

A strategy is built once per (service, method) with that pair's
:class:`~rpc.config.Settings`; its ``invoke(invocation, cluster)`` returns the
awaitable of the call's result, looping (or fanning out) around the cluster's
"select, then attempt". Users add their own with ``@rpc.extension("clusters",
"name")`` or the ``callscope.clusters`` entry points, and name them in configuration.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import RpcError, UnavailableError
from .._invocation import Invocation
from ..config import Settings
from ._cluster import CLUSTERS, ClusterInvoker

__all__ = ["Broadcast", "ClusterStrategy", "Failfast", "Failsafe", "Forking", "Outcome"]

log = logging.getLogger("callscope.rpc")


class ClusterStrategy(Protocol):
    """Built as ``factory(settings)``; runs every call of one (service, method)."""

    def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Awaitable[Any]: ...


@CLUSTERS.register("failfast")
class Failfast:
    """One attempt on one provider; its error is the call's error (the default)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Awaitable[Any]:
        provider = cluster.select(invocation, cluster.providers(invocation))
        return cluster.attempt(invocation, provider)


@CLUSTERS.register("failsafe")
class Failsafe:
    """One attempt; an error is logged, recorded and swallowed (``failback_default`` is
    returned): for calls whose failure must never reach the caller, as audit logs."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    async def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Any:
        def swallowed(inv: Invocation, error: Exception) -> None:
            code = getattr(error, "code", "INTERNAL")
            cluster.decided(inv, "failsafe.ignore", **{"error.code": code})

        try:
            provider = cluster.select(invocation, cluster.providers(invocation))
            return await cluster.attempt(invocation, provider, swallowed)
        except RpcError as err:
            log.warning(
                "callscope: failsafe call %s/%s failed (ignored): %s",
                invocation.service,
                invocation.method,
                err,
            )
            return self.settings.failback_default


@dataclass(slots=True)
class Outcome:
    """What one provider answered in a broadcast."""

    peer: str
    value: Any = None
    error: RpcError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


@CLUSTERS.register("broadcast")
class Broadcast:
    """Every provider at once; the result is one :class:`Outcome` per provider."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    async def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> list[Outcome]:
        providers = cluster.providers(invocation, in_process=False)
        if not providers:
            raise UnavailableError(f"no provider for {invocation.service!r} to broadcast to")

        async def one(address: str, attempt: Awaitable[Any]) -> Outcome:
            try:
                return Outcome(address, await attempt)
            except RpcError as err:
                return Outcome(address, error=err)

        return list(
            await asyncio.gather(
                *(one(p.address, cluster.attempt(invocation.copy(), p)) for p in providers)
            )
        )


@CLUSTERS.register("forking")
class Forking:
    """``forks`` providers at once; the first success wins and the others are cancelled."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    async def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Any:
        providers = list(cluster.providers(invocation, in_process=False))
        if not providers:
            raise UnavailableError(f"no provider for {invocation.service!r}")
        chosen = random.sample(providers, min(self.settings.forks, len(providers)))
        tasks = []
        for number, provider in enumerate(chosen, 1):
            attempt = invocation.copy()
            attempt.attempt = number
            tasks.append(asyncio.ensure_future(cluster.attempt(attempt, provider)))
        last_error: BaseException | None = None
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    return await next_done
                except RpcError as err:
                    last_error = err
        finally:
            for task in tasks:
                task.cancel()
        assert last_error is not None
        raise last_error
