"""The cluster invoker: directory → (in-process first) → balancer → per-attempt chain → invoker.

A strategy (failfast, broadcast, forking, ...) drives the attempts of one call
through the three steps this class offers: :meth:`providers` (the candidates),
:meth:`select` (one of them, by the balancer) and :meth:`attempt` (one try, through
the client interceptor chain, so every attempt has its own CLIENT span).
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Sequence
from typing import Any

from .. import _injvm
from .._balance import Balancer
from .._directory import Directory, Provider
from .._errors import UnavailableError
from .._invocation import CallNext, Interceptor, Invocation, build_chain
from ._invoker import Invoker

__all__ = ["ClusterInvoker"]


class ClusterInvoker:
    """What every strategy of one client shares: where providers are, how to pick, how to send."""

    def __init__(
        self,
        directory: Directory,
        invoker: Invoker,
        balancer: Balancer,
        interceptors: Sequence[Interceptor] = (),
        *,
        injvm: _injvm.InjvmInvoker | None = None,
    ) -> None:
        self.directory = directory
        self.invoker = invoker
        self.balancer = balancer
        self.injvm = injvm
        # The in-process provider: its own invoker, told apart by identity, never by name.
        self.in_process = Provider(_injvm.PEER, metadata={"in_process": True})
        self._interceptors = list(interceptors)
        self._remote: CallNext = build_chain(self._interceptors, invoker.invoke)
        self._local: CallNext | None = (
            build_chain(self._interceptors, injvm.invoke) if injvm is not None else None
        )

    @property
    def interceptors(self) -> list[Interceptor]:
        return list(self._interceptors)

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append an interceptor (innermost); the chains are rebuilt once, here."""
        self._interceptors.append(interceptor)
        self._remote = build_chain(self._interceptors, self.invoker.invoke)
        if self.injvm is not None:
            self._local = build_chain(self._interceptors, self.injvm.invoke)

    # -- the three steps of a strategy ----------------------------------------
    def providers(self, inv: Invocation, *, in_process: bool = True) -> Sequence[Provider]:
        """The candidates for ``inv``: the in-process export if there is one (and
        ``in_process``), else the directory's providers that look usable (all of them
        if none does)."""
        injvm = self.injvm
        if in_process and injvm is not None and injvm.serves(inv):
            return (self.in_process,)
        providers = self.directory.providers(inv.service, inv.version, inv.group)
        if len(providers) > 1:
            available = self.invoker.available
            usable = [p for p in providers if available(p.address)]
            if usable and len(usable) < len(providers):
                return usable
        return providers

    def select(
        self, inv: Invocation, providers: Sequence[Provider], tried: Collection[str] = ()
    ) -> Provider:
        """One provider by the balancer, preferring those not ``tried`` yet."""
        if tried:
            fresh = [p for p in providers if p.address not in tried]
            providers = fresh or providers
        if not providers:
            raise UnavailableError(
                f"no provider for {inv.service!r} (version {inv.version!r}, group {inv.group!r})"
            )
        if len(providers) == 1:
            return providers[0]
        return self.balancer.select(providers, inv)

    def attempt(self, inv: Invocation, provider: Provider) -> Awaitable[Any]:
        """One try on ``provider``, through the client chain (a CLIENT span each)."""
        inv.peer = provider.address
        if provider is self.in_process and self._local is not None:
            return self._local(inv)
        return self._remote(inv)

    async def close(self) -> None:
        await self.invoker.close()
