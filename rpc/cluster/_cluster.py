"""The cluster invoker: directory → (in-process first) → balancer → per-attempt chain → invoker.

A strategy (failfast, failover, broadcast, ...) drives the attempts of one call
through the steps this class offers: :meth:`providers` (the candidates),
:meth:`select` (one of them, by the service's balancer) and :meth:`attempt` (one
try, through the client interceptor chain, so every attempt has its own CLIENT
span). Which strategy, and with which settings, is decided per (service, method)
by the layered configuration; strategies are built once per pair and kept until
the configuration changes.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

from .. import _injvm
from .._balance import Balancer, get_balancer
from .._directory import Directory, Provider
from .._errors import ResourceExhaustedError, RpcError, UnavailableError
from .._extensions import extension_point
from .._invocation import CallNext, Interceptor, Invocation, build_chain
from ..balance import WeightTable
from ..config import LayeredConfig, Settings
from ..degrade import BreakerBoard, BreakerRules, MaskTable
from ..routing import RouterChain
from ._breaking import Guard, closed_circuits, degraded, guarded_attempt
from ._budget import RetryBudget
from ._direct import one_attempt
from ._feed import GovernanceFeed
from ._invoker import Invoker
from ._tally import DECISIONS, land_pending

__all__ = ["CLUSTERS", "ClusterInvoker", "in_doubt"]

CLUSTERS = extension_point("clusters")
REJECTED = "rejected"  # the peer of a call the consumer's own cap refused
log = logging.getLogger("callscope.rpc")
FailureHook = Callable[[Invocation, Exception], None]


def in_doubt(error: RpcError) -> bool:
    """Might the provider have run the call? (a timeout, or the link lost after sending)"""
    return error.code == "TIMEOUT" or bool(getattr(error, "in_doubt", False))


class ClusterInvoker:
    """What every strategy of one client shares: where providers are, how to pick, how to send."""

    def __init__(
        self,
        directory: Directory,
        invoker: Invoker,
        config: LayeredConfig,
        interceptors: Sequence[Interceptor] = (),
        *,
        injvm: _injvm.InjvmInvoker | None = None,
        registry: Any = None,
        labels: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = directory
        self.registry = registry  # watched for governance/<service>/weights when given
        self.weights = WeightTable()
        self.labels = {"host": socket.gethostname(), **(labels or {})}  # what routers compare
        self.invoker = invoker
        self.config = config
        self.injvm = injvm
        self.counters: Counter[tuple[str, str]] = Counter()  # (service, decision) → count
        # The in-process provider: its own invoker, told apart by identity, never by name.
        self.in_process = Provider(_injvm.PEER, metadata={"in_process": True})
        self._interceptors = list(interceptors)
        self._plans: dict[tuple[str, str], _Plan] = {}  # what invoke needs, per pair
        self._balancers: dict[str, Balancer] = {}
        self._warmups: dict[str, float] = {}
        self._routes: dict[tuple[str, str], RouterChain] = {}
        self._reweighed: set[str] = set()  # services whose new weights no attempt used yet
        self.breakers = BreakerBoard()  # per (service, method, provider), for rules that ask
        self.masks = MaskTable()  # governance/<service>/mask, followed by the feed
        self._guarded: dict[tuple[str, str], Guard] = {}
        self.tripped: set[Guard] = set()  # guards with a breaker not closed (kept by each)
        self.feed = GovernanceFeed(directory, registry, config, self.weights, self.counters)
        self.feed.masks = self.masks
        self.feed.on_weights = self._reweighed.add
        self._budgets: dict[str, RetryBudget] = {}
        self._inflight: dict[str, InFlight] = {}  # service → its calls in flight, when capped
        self._failcaches: dict[str, Any] = {}  # file → its Deliverer
        self._build_chains()
        config.subscribe(self._config_changed)

    @property
    def interceptors(self) -> list[Interceptor]:
        return list(self._interceptors)

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append an interceptor (innermost); the chains are rebuilt once, here."""
        self._interceptors.append(interceptor)
        self._build_chains()
        self._config_changed()  # the guards' chains too

    def _build_chains(self) -> None:
        chain = self._interceptors
        self._remote: CallNext = build_chain(chain, self.invoker.invoke)
        self._remote_hooked: CallNext = build_chain(chain, _hooked(self.invoker.invoke))
        injvm = self.injvm
        self._local = build_chain(chain, injvm.invoke) if injvm else self._remote
        self._local_hooked = build_chain(chain, _hooked(injvm.invoke)) if injvm else self._remote

    def _config_changed(self) -> None:
        self._plans = {}
        self._guarded = {}
        self.tripped = set()
        self._balancers = {}
        self._warmups = {}
        self._routes = {}

    # -- the call -------------------------------------------------------------
    def invoke(self, inv: Invocation) -> Awaitable[Any]:
        """Run ``inv`` with the strategy configured for its service and method."""
        if self.masks.active:
            fallback = self.masks.fallback(inv.service, inv.method)
            if fallback is not None:
                return degraded(self, inv, fallback, "mask.degraded", side="consumer")
        plan = self._plans.get((inv.service, inv.method)) or self._plan(inv)
        guard = plan.guard
        if guard is not None and (guard.tripped or guard.rules.on_error):
            strategy = guard.degrading  # a breaker may refuse: the fallback answers
        elif plan.direct:
            return one_attempt(self, inv, plan)
        else:
            strategy = plan.strategy
        inflight = plan.inflight
        if inflight is not None:
            return self._capped(strategy, inv, inflight)
        return strategy.invoke(inv, self)

    async def _capped(self, strategy: Any, inv: Invocation, inflight: InFlight) -> Any:
        """The consumer's cap on a service's calls in flight (setting ``max_inflight``)."""
        if inflight.count >= inflight.limit:
            return await self.refused(inv, inflight)
        inflight.count += 1
        try:
            return await strategy.invoke(inv, self)
        finally:
            inflight.count -= 1

    def refused(self, inv: Invocation, inflight: InFlight) -> Awaitable[Any]:
        """A call over the cap, refused through the client chain (peer "rejected"), so the
        refusal has a CLIENT span with its event, and a KPI sample with its counter."""
        service, cap = inv.service, inflight.limit
        inv.peer = REJECTED
        inv.on_failure = None
        inv.add_pending_event("flow.rejected", limit=cap, side="consumer")
        self.counters[(service, "flow.rejected")] += 1
        error = ResourceExhaustedError(
            f"this consumer already has {inflight.count} calls of {service!r} in flight"
            f" (setting max_inflight = {cap})"
        )

        async def refuse(inv: Invocation) -> Any:
            land_pending(inv)
            raise error

        return self.chain(refuse)(inv)

    def settings(self, service: str, method: str = "") -> Settings:
        return self.config.effective(service, method)

    def _plan(self, inv: Invocation) -> _Plan:
        """What every call of (service, method) needs, read from the settings once."""
        service = inv.service
        key = (service, inv.method)
        self.feed.follow(service)
        from ._strategies import Failfast  # it imports this module

        settings = self.config.effective(*key)
        strategy = CLUSTERS.get(settings.cluster)(settings)
        guard = None
        if settings.breaker is not None:
            rules = BreakerRules.parse(settings.breaker)
            guard = self._guarded[key] = Guard(self, *key, rules, strategy)
        # The cap is the service's (max_inflight is read at the service level); its count
        # outlives a change of settings, so calls in flight across it stay counted.
        cap = self.settings(service).max_inflight or 0
        inflight = self._inflight.get(service)
        if cap and inflight is None:
            inflight = self._inflight[service] = InFlight()
        if inflight is not None:
            inflight.limit = cap
        plan = self._plans[key] = _Plan(strategy, guard, inflight if cap else None)
        # A failfast call with no interceptor between it and the invoker: cap and breaker
        # count around the invoker's await in the call's own frame (see _direct).
        plan.direct = (
            type(strategy) is Failfast
            and not self._interceptors
            and (plan.inflight is not None or guard is not None)
        )
        if plan.direct:  # an adaptive balancer watches attempts: they go the general way
            balancer = self._balancers.get(service) or self._balancer(service)
            plan.observes = bool(getattr(balancer, "observes", False))
        return plan

    def inflight(self, service: str) -> int:
        """Calls of ``service`` in flight now, as its cap counts them (0 when uncapped)."""
        inflight = self._inflight.get(service)
        return 0 if inflight is None else inflight.count

    # -- the steps of a strategy ----------------------------------------------
    def providers(self, inv: Invocation, *, in_process: bool = True) -> Sequence[Provider]:
        """The candidates for ``inv``: the in-process export if there is one (and
        ``in_process``), else the directory's providers that look usable (all of them
        if none does)."""
        injvm = self.injvm
        if in_process and injvm is not None and injvm.serves(inv):
            return (self.in_process,)
        providers = self.directory.providers(inv.service, inv.version, inv.group)
        if len(providers) > 1:
            down = self.invoker.unavailable()
            if down:
                usable = [p for p in providers if p.address not in down]
                if usable and len(usable) < len(providers):
                    providers = usable
        if self.tripped and providers:
            guard = self._guarded.get((inv.service, inv.method))
            if guard is not None and guard.tripped:
                providers = closed_circuits(guard, inv, providers)
        routes = self._routes.get((inv.service, inv.method))
        if routes is None:
            routes = self._route_chain(inv)
        if not routes.rules or not providers:
            return providers
        routed = routes.route(providers, inv)
        if len(routed) < len(providers):
            self.counters[(inv.service, "route.filtered")] += 1
            inv.add_pending_event("route.filtered", providers=len(providers), routed=len(routed))
        return routed

    def _route_chain(self, inv: Invocation) -> RouterChain:
        settings = self.settings(inv.service, inv.method)
        chain = self._routes[(inv.service, inv.method)] = RouterChain(settings.routers, self.labels)
        self.feed.follow(inv.service)
        return chain

    def select(
        self, inv: Invocation, providers: Sequence[Provider], tried: Collection[str] = ()
    ) -> Provider:
        """One provider by the service's balancer, preferring those not ``tried`` yet."""
        if tried:
            fresh = [p for p in providers if p.address not in tried]
            providers = fresh or providers
        if not providers:
            raise UnavailableError(
                f"no provider for {inv.service!r} (version {inv.version!r}, group {inv.group!r})"
            )
        if len(providers) == 1:
            return providers[0]
        service = inv.service
        balancer = self._balancers.get(service) or self._balancer(service)
        if self._reweighed and service in self._reweighed:
            self._reweighed.discard(service)
            document = self.weights.document(service)
            version = -1 if document is None else document.version
            inv.add_pending_event("weights.applied", version=version)
        return balancer.select(self.weights.apply(service, providers, self._warmups[service]), inv)

    def _balancer(self, service: str) -> Balancer:
        settings = self.settings(service)
        balancer = self._balancers[service] = get_balancer(settings.balancer, settings)
        self._warmups[service] = settings.warmup
        self.feed.follow(service)
        return balancer

    def attempt(
        self, inv: Invocation, provider: Provider, on_failure: FailureHook | None = None
    ) -> Awaitable[Any]:
        """One try on ``provider``, through the client chain (a CLIENT span each).

        ``on_failure(inv, error)`` runs inside the attempt when the invoker fails, so
        a strategy's decision lands as an event on that attempt's span; the decisions
        taken before it (``inv.pending_events``) land there when it starts.
        """
        inv.peer = provider.address
        local = provider is self.in_process
        if self._guarded and not local:
            guard = self._guarded.get((inv.service, inv.method))
            if guard is not None:
                call = guarded_attempt(self, guard, inv, provider, on_failure)
                return self._observe(inv, provider, call)
        if on_failure is None and inv.pending_events is None:
            call = self._local(inv) if local else self._remote(inv)
        else:
            inv.on_failure = on_failure
            call = self._local_hooked(inv) if local else self._remote_hooked(inv)
        return self._observe(inv, provider, call)

    def _observe(self, inv: Invocation, provider: Provider, call: Awaitable[Any]) -> Awaitable[Any]:
        if self.observes(inv):
            return _observed(call, self._balancers[inv.service], provider.address)
        return call

    def observes(self, inv: Invocation) -> bool:
        """Does the balancer of ``inv``'s service watch every attempt (an adaptive one)?"""
        balancer = self._balancers.get(inv.service)
        return balancer is not None and getattr(balancer, "observes", False)

    def guard(self, service: str, method: str) -> Guard | None:
        """The breakers of (service, method), if its settings have ``breaker`` rules."""
        return self._guarded.get((service, method))

    def guards(self) -> dict[tuple[str, str], Guard]:
        """Every (service, method) with ``breaker`` rules, and its breakers (as of now)."""
        return self._guarded

    def chain(self, terminal: CallNext) -> CallNext:
        """The client interceptor chain around ``terminal`` (a degraded call's answer)."""
        return build_chain(self._interceptors, terminal)

    def budget(self, service: str) -> RetryBudget:
        """The retry budget of ``service`` (one bucket per consumer and service)."""
        budget = self._budgets.get(service)
        if budget is None:
            settings = self.settings(service)
            budget = RetryBudget(settings.retry_budget, settings.retry_ratio)
            self._budgets[service] = budget
        return budget

    def decided(self, inv: Invocation, decision: str, **attributes: Any) -> None:
        """Record a governance decision: an event on the current attempt, and counters."""
        inv.add_event(decision, **attributes)
        self.count(inv, decision)

    def count(self, inv: Invocation, decision: str) -> None:
        """Count a decision about ``inv``'s last attempt: here, and for the consumer KPIs."""
        self.counters[(inv.service, decision)] += 1
        DECISIONS.add(inv.service, inv.peer, inv.method, decision)

    def failcache(self, settings: Settings) -> Any:
        """The durable queue at ``settings.failcache_path``, its delivery running."""
        from ._failcache import Deliverer, FailcacheQueue

        deliverer = self._failcaches.get(settings.failcache_path)
        if deliverer is None:
            queue = FailcacheQueue(settings.failcache_path)
            deliverer = self._failcaches[settings.failcache_path] = Deliverer(queue, self, settings)
        deliverer.start()
        return deliverer.queue

    async def close(self) -> None:
        self.feed.close()
        for deliverer in self._failcaches.values():
            await deliverer.stop()
            deliverer.queue.close()
        self._failcaches = {}
        await self.invoker.close()


async def _observed(call: Awaitable[Any], balancer: Any, address: str) -> Any:
    """Feed an adaptive balancer: in flight, latency and failure of one attempt."""
    balancer.started(address)
    start = time.perf_counter()
    failed = True
    try:
        result = await call
        failed = False
        return result
    finally:
        balancer.finished(address, time.perf_counter() - start, failed)


class InFlight:
    """A consumer's calls of one service in flight, and its cap (``max_inflight``)."""

    __slots__ = ("count", "limit")

    def __init__(self) -> None:
        self.count = 0
        self.limit = 0


class _Plan:
    """The strategy, breakers and cap of one (service, method): one lookup a call."""

    __slots__ = ("direct", "guard", "inflight", "observes", "strategy")

    def __init__(self, strategy: Any, guard: Guard | None, inflight: InFlight | None) -> None:
        self.strategy = strategy
        self.guard = guard
        self.inflight = inflight
        self.direct = False  # run by rpc.cluster._direct.one_attempt
        self.observes = False  # the service's balancer watches every attempt


def _hooked(invoke: Callable[[Invocation], Awaitable[Any]]) -> CallNext:
    async def terminal(inv: Invocation) -> Any:
        land_pending(inv)  # inside the attempt now: its span is open
        try:
            return await invoke(inv)
        except RpcError as err:
            hook = inv.on_failure
            if hook is not None:
                hook(inv, err)
            raise

    return terminal
