"""Static flow control: a cluster-wide calls-per-second cap per service and method.

:class:`QuotaLimiter` is an admission gate (:class:`rpc.flow.Gate`): each provider
instance spends a slice of the cap, leased from a pool in the registry every period
(:mod:`._lease_client`), locally in a token bucket (:mod:`._quota_bucket`) -- no remote
call per request. A call past the slice is refused with ``RESOURCE_EXHAUSTED``, not
``BUSY``: the cluster's quota is used up, so a consumer's failover to another
instance would only spend that instance's slice (``BUSY`` is retriable; this is not).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._errors import ResourceExhaustedError
from ..cluster._tally import DECISIONS
from ._lease_client import LeaseClient, ServiceLease
from ._quota_bucket import QuotaBucket
from ._quota_rule import ANY

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["QuotaLimiter"]

Admission = tuple[QuotaBucket | None, dict[str, QuotaBucket]]


class QuotaLimiter:
    """Leased cluster-wide quotas for the services of one provider instance.

    ``limiter.start(instance, services)`` once the server's address is known
    (``instance`` is the ``host:port`` it registers under), or ``attach(server)`` after
    the server started; :meth:`close` returns the slices to the pool. Services without
    a rule in the registry are not limited.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._active: dict[str, Admission] = {}
        self._client: LeaseClient | None = None
        self._instance = ""
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------
    def start(self, instance: str, services: Iterable[str]) -> QuotaLimiter:
        if self._client is not None:
            raise RuntimeError("this quota limiter is started already")
        self._instance = instance
        self._client = LeaseClient(self.registry, instance, sorted(set(services)), self._install)
        self._client.start()
        return self

    def attach(self, server: Any) -> QuotaLimiter:
        """Gate ``server`` (started) for every service it exports."""
        if self not in getattr(server, "gates", ()):
            server.add_gate(self)
        return self.start(server.address, [spec.name for spec in server.services()])

    def close(self) -> None:
        """Return the slices to the pool. Close after the server stopped (or unregistered):
        the buckets go on spending their last lease, then the local share, meanwhile."""
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> QuotaLimiter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the gate (the provider's event loop) ----------------------------------
    def admit(self, service: str, method: str, principal: Any, /) -> None:
        """Spend one call of ``service``'s (and ``method``'s) slice, or refuse it."""
        found = self._active.get(service)
        if found is None:
            return
        total, methods = found
        if total is not None and not total.take():
            raise self._refusal(service, method, ANY, total)
        if methods:
            bucket = methods.get(method)
            if bucket is not None and not bucket.take():
                if total is not None:
                    total.give_back()
                raise self._refusal(service, method, method, bucket)

    def _refusal(
        self, service: str, method: str, scope: str, bucket: QuotaBucket
    ) -> ResourceExhaustedError:
        """The error, and a provider KPI counter (``governance.quota.rejected``) beside the
        server's ``flow.rejected``: no span exists yet at admission."""
        DECISIONS.add(service, self._instance, method, "quota.rejected")
        what = service if scope == ANY else f"{service}/{scope}"
        rate = bucket.current_rate(time.monotonic())
        return ResourceExhaustedError(
            f"quota of {what} used up on this instance ({rate:.1f} calls/s of the cluster's)"
        )

    # -- rule changes (registry threads) ----------------------------------------
    def _install(self, service: str, lease: ServiceLease) -> None:
        """Buckets for the rule's scopes (kept across changes: their counts live on)."""
        with self._lock:
            rule = lease.rule
            if rule is None:
                self._active.pop(service, None)
                lease.buckets = {}
                return
            share = max(1, len(lease.members))
            buckets = {}
            for scope, cap in rule.limits().items():
                bucket = lease.buckets.get(scope)
                if bucket is None:  # until the first lease: the equal local share
                    bucket = QuotaBucket(cap / share, rule.burst_s)
                    bucket.until = 0.0
                bucket.burst_s = rule.burst_s
                buckets[scope] = bucket
            lease.buckets = buckets
            methods = {scope: b for scope, b in buckets.items() if scope != ANY}
            self._active = {**self._active, service: (buckets.get(ANY), methods)}

    # -- observability ----------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Per service: rule, state, slices (granted rate, demand), counts, lease history."""
        if self._client is None:
            return {}
        now = time.monotonic()
        out = {}
        for service, lease in self._client.leases.items():
            rule = lease.rule
            out[service] = {
                "state": lease.state if rule is not None else "unlimited",
                "period_s": lease.period,
                "holders": lease.holders,
                "lease_age_s": None if lease.leased_at is None else round(now - lease.leased_at, 3),
                "renewals": lease.renewals,
                "failures": lease.failures,
                "last_error": lease.last_error,
                "limits": {
                    scope: {
                        "cap": cap,
                        "rate": round(lease.buckets[scope].current_rate(now), 3)
                        if scope in lease.buckets
                        else None,
                        "granted": lease.grants.get(scope),
                        "demand": lease.demands.get(scope),
                        "arrivals": lease.buckets[scope].arrivals if scope in lease.buckets else 0,
                        "refused": lease.buckets[scope].refused if scope in lease.buckets else 0,
                    }
                    for scope, cap in (rule.limits().items() if rule is not None else ())
                },
                "history": list(lease.history),
            }
        return out
