"""Fault-tolerance strategies, each a small class found by name (kind ``clusters``).

A strategy's ``invoke(invocation, cluster)`` returns the awaitable of the call's
result; it loops (or fans out) around the cluster's "select, then attempt".
Users add their own with ``@rpc.extension("clusters", "name")`` or the
``callscope.clusters`` entry points, and name them in configuration.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from .._errors import RpcError, UnavailableError
from .._extensions import extension_point
from .._invocation import Invocation
from ._cluster import ClusterInvoker

__all__ = ["CLUSTERS", "Broadcast", "ClusterStrategy", "Failfast", "Forking", "Outcome"]

CLUSTERS = extension_point("clusters")


class ClusterStrategy(Protocol):
    def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Awaitable[Any]: ...


@CLUSTERS.register("failfast")
class Failfast:
    """One attempt on one provider; its error is the call's error (the default)."""

    def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Awaitable[Any]:
        provider = cluster.select(invocation, cluster.providers(invocation))
        return cluster.attempt(invocation, provider)


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

    def __init__(self, forks: int = 2) -> None:
        if not isinstance(forks, int) or forks < 1:
            raise ValueError(f"forks must be a positive integer, not {forks!r}")
        self.forks = forks

    async def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Any:
        providers = list(cluster.providers(invocation, in_process=False))
        if not providers:
            raise UnavailableError(f"no provider for {invocation.service!r}")
        chosen = random.sample(providers, min(self.forks, len(providers)))
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
