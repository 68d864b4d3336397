"""One instance's side of the quota pool: lease a slice every period, keep it through outages.

Per watched service, a background thread (never the provider's event loop):

* watches ``governance/<service>/quota`` (the rule, pushed live) and the lease ledger
  ``leases/<service>/quota``, and looks up the service's registrations at each renewal
  (who is alive: a departed instance's slice is reclaimed by the next writer; a lookup,
  not a subscription, so a provider is not listed as a consumer of its own service);
* every period T (the rule's ``period_s``), reads the ledger, computes its slice from
  its recent demand (:func:`~._lease_ledger.renew`) and writes it back with the version
  it read -- one registry round trip per instance per period, none per call;
* renews early when the ledger shows its slice is far from its fair share (someone
  joined, left, or changed demand): rebalancing takes a push and a write, not a period;
* when the registry is unreachable, its bucket keeps the last lease until the end of
  the next period, then falls back on its own to ``cap / holders`` (the equal local
  share over the last known number of holders); the thread keeps retrying.

Sentinel's cluster flow control asks a token server on every call and has no
failover (alibaba/Sentinel#1425, #1534); here the registry is off the call path, and
its loss degrades to the last lease, then to a local share.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import RpcError
from ._lease_ledger import fair_grants, lease_key, live_holders, release, renew
from ._quota_bucket import QuotaBucket
from ._quota_rule import QuotaRule, quota_key

if TYPE_CHECKING:
    from ..registry import ConfigDocument, Registry, ServiceInstance

__all__ = ["LeaseClient", "ServiceLease"]

log = logging.getLogger("callscope.flow")

CAS_ATTEMPTS = 8
EARLY_GAP = 0.25
"""An early renewal waits at least this fraction of T after the last one (no write storm)."""
REBALANCE_SLACK = 0.05
"""A slice this far (fraction of the cap) from its fair share is renewed early."""
HISTORY = 32
Apply = Callable[[str, "ServiceLease"], None]


@dataclass
class ServiceLease:
    """What this instance holds of one service's pool, and how it got there."""

    service: str
    rule: QuotaRule | None = None
    buckets: dict[str, QuotaBucket] = field(default_factory=dict)
    grants: dict[str, float] = field(default_factory=dict)
    demands: dict[str, float | None] = field(default_factory=dict)
    state: str = "waiting"  # waiting | leased | grace | local-share | unlimited
    holders: int = 1
    leased_at: float | None = None  # monotonic
    renewals: int = 0
    failures: int = 0
    last_error: str = ""
    due: float = 0.0
    marks: tuple[float, dict[str, int]] = (0.0, {})  # when demand was last measured, arrivals
    ledger: Any = None  # the last ledger value pushed
    members: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    @property
    def period(self) -> float:
        return self.rule.period_s if self.rule is not None else 1.0

    @property
    def departed(self) -> set[str]:
        """Instances the registry listed once and lists no more."""
        return self.seen - self.members


class LeaseClient:
    """Renews ``me``'s slices of each service's pool; ``apply`` installs new buckets."""

    def __init__(self, registry: Registry, me: str, services: list[str], apply: Apply) -> None:
        self.registry = registry
        self.me = me
        self.leases = {service: ServiceLease(service) for service in services}
        self._apply = apply
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._unwatch: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name=f"callscope-quota-{me}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop renewing and hand every slice back to the pool (best effort)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        for unwatch in self._unwatch:
            try:
                unwatch()
            except Exception:  # pragma: no cover - a closing registry
                log.debug("unwatch failed", exc_info=True)
        for lease in self.leases.values():
            if lease.leased_at is not None:
                self._release(lease)

    # -- listeners (registry threads: record and wake, never block) ----------
    def _on_rule(self, service: str, doc: ConfigDocument | None) -> None:
        lease = self.leases[service]
        try:
            rule = QuotaRule.parse(doc.value) if doc is not None else None
        except RpcError as err:  # written around the validation (by hand in ZooKeeper...)
            log.error("ignoring quota rule of %s: %s (keeping the last one)", service, err)
            return
        with self._lock:
            if rule != lease.rule:
                lease.rule = rule
                lease.due = 0.0
        self._apply(service, lease)
        self._wake.set()

    def _on_ledger(self, service: str, doc: ConfigDocument | None) -> None:
        lease = self.leases[service]
        with self._lock:
            lease.ledger = doc.value if doc is not None else None
            if lease.rule is not None and lease.leased_at is not None and self._off_balance(lease):
                lease.due = min(lease.due, lease.leased_at + EARLY_GAP * lease.period)
                self._wake.set()

    def _members(self, lease: ServiceLease, instances: list[ServiceInstance]) -> None:
        with self._lock:
            lease.members = {i.address for i in instances}
            holders = set(live_holders(lease.ledger, time.time()))
            # bounded: a departed instance is remembered while its slice is in the ledger
            lease.seen = (lease.seen | lease.members) & (lease.members | holders)

    def _off_balance(self, lease: ServiceLease) -> bool:
        """Would a renewal now move one of my slices by more than the slack?"""
        assert lease.rule is not None
        caps = lease.rule.limits()
        wants = fair_grants(
            lease.ledger, self.me, caps, lease.demands, time.time(), lease.departed, lease.members
        )
        return any(
            abs(want - lease.grants.get(scope, 0.0)) > REBALANCE_SLACK * caps[scope]
            for scope, want in wants.items()
        )

    # -- the thread -----------------------------------------------------------
    def _run(self) -> None:
        for service in self.leases:
            self._watch(service)
        while not self._closed:
            now = time.monotonic()
            for lease in self.leases.values():
                if lease.due <= now and not self._closed:
                    self._renew(lease)
            wait = min(lease.due for lease in self.leases.values()) - time.monotonic()
            self._wake.wait(min(max(wait, 0.001), 1.0))
            self._wake.clear()

    def _watch(self, service: str) -> None:
        registry = self.registry
        calls: list[Callable[[], Callable[[], None]]] = [
            lambda: registry.watch_config(
                lease_key(service), lambda d: self._on_ledger(service, d)
            ),
            lambda: registry.watch_config(quota_key(service), lambda d: self._on_rule(service, d)),
        ]
        for call in calls:
            try:
                self._unwatch.append(call())
            except RpcError as err:
                log.error("quota of %s: cannot watch the registry: %s", service, err)

    def _measure(self, lease: ServiceLease, now: float) -> None:
        """Demand per scope: arrivals per second since the last renewal, smoothed over T."""
        since, counts = lease.marks
        elapsed = now - since
        for scope, bucket in lease.buckets.items():
            if scope not in counts or elapsed <= 0:
                continue
            rate = (bucket.arrivals - counts[scope]) / elapsed
            before = lease.demands.get(scope)
            alpha = min(1.0, elapsed / lease.period)
            lease.demands[scope] = rate if before is None else before + (rate - before) * alpha
        lease.marks = (now, {scope: b.arrivals for scope, b in lease.buckets.items()})

    def _renew(self, lease: ServiceLease) -> None:
        with self._lock:
            rule = lease.rule
        period = lease.period
        now = time.monotonic()
        if rule is None:
            lease.due = now + period
            if lease.leased_at is not None:
                self._release(lease)
            return
        self._measure(lease, now)
        caps = rule.limits()
        try:
            self._members(lease, self.registry.lookup(lease.service))
            grants, holders = self._exchange(lease, caps)
        except RpcError as err:
            self._failed(lease, err, now)
            return
        now = time.monotonic()
        for scope, bucket in lease.buckets.items():
            cap = caps.get(scope, 0.0)
            bucket.lease(grants.get(scope, 0.0), now + 2 * period, cap / max(1, holders))
        changed = lease.state != "leased" or any(
            abs(grants[s] - lease.grants.get(s, 0.0)) > 0.1 * max(caps[s], 1e-9) for s in caps
        )
        lease.grants, lease.holders, lease.leased_at = grants, holders, now
        lease.state, lease.renewals, lease.failures = "leased", lease.renewals + 1, 0
        lease.due = min(now + period * random.uniform(0.9, 1.0), self._next_expiry(lease, now))
        if changed:
            self._log(lease, logging.INFO, "leased")

    def _next_expiry(self, lease: ServiceLease, now: float) -> float:
        """When another holder's slice lapses (monotonic): a crashed holder's slice is
        taken back then, not a period later."""
        wall = time.time()
        ends = [until for name, (until, _) in live_holders(lease.ledger, wall).items()
                if name != self.me]  # fmt: skip
        return now + min(ends) - wall + 0.01 if ends else float("inf")

    def _exchange(
        self, lease: ServiceLease, caps: dict[str, float]
    ) -> tuple[dict[str, float], int]:
        """Read the ledger, take my slice, write it back; retried when another writer won."""
        key = lease_key(lease.service)
        for _ in range(CAS_ATTEMPTS):
            doc = self.registry.get_config(key)
            with self._lock:
                departed, members = lease.departed, set(lease.members)
            value, grants, holders = renew(
                doc.value if doc is not None else None,
                self.me,
                caps,
                lease.demands,
                time.time(),
                2 * lease.period,
                departed,
                members,
            )
            try:
                written = self.registry.put_config(key, value, expected=doc.version if doc else 0)
            except RpcError as err:
                if err.code == "CONFLICT":
                    time.sleep(random.uniform(0, 0.01))
                    continue
                raise
            with self._lock:
                lease.ledger = written.value
            return grants, holders
        raise RpcError(f"lease ledger of {lease.service} kept changing", code="CONFLICT")

    def _failed(self, lease: ServiceLease, err: RpcError, now: float) -> None:
        lease.failures += 1
        lease.last_error = str(err)
        period = lease.period
        if lease.leased_at is None:  # never leased: the equal share of who is registered
            state = "local-share"
            with self._lock:
                count = max(1, len(lease.members))
            caps = lease.rule.limits() if lease.rule is not None else {}
            for scope, bucket in lease.buckets.items():
                bucket.lease(0.0, 0.0, caps.get(scope, 0.0) / count)
        elif now < lease.leased_at + 2 * period:
            state = "grace"
        else:
            state = "local-share"
        lease.due = now + min(period / 4, 1.0)
        if state != lease.state:
            lease.state = state
            self._log(lease, logging.WARNING, f"cannot lease ({err})")

    def _release(self, lease: ServiceLease) -> None:
        key = lease_key(lease.service)
        try:
            for _ in range(CAS_ATTEMPTS):
                doc = self.registry.get_config(key)
                value = release(doc.value, self.me, time.time()) if doc is not None else None
                if value is None or doc is None:
                    break
                try:
                    self.registry.put_config(key, value, expected=doc.version)
                    break
                except RpcError as err:
                    if err.code != "CONFLICT":
                        raise
        except RpcError as err:
            log.warning("could not return the quota lease of %s: %s", lease.service, err)
        lease.leased_at = None
        lease.grants = {}
        lease.state = "unlimited" if lease.rule is None else "waiting"

    def _log(self, lease: ServiceLease, level: int, what: str) -> None:
        caps = lease.rule.limits() if lease.rule is not None else {}
        slices = ", ".join(
            f"{scope} {lease.grants.get(scope, 0.0):.1f}/{cap:g}" for scope, cap in caps.items()
        )
        entry = {"at": time.time(), "state": lease.state, "note": what}
        lease.history.append({**entry, "grants": dict(lease.grants), "holders": lease.holders})
        log.log(level, "quota %s %s: %s [%s] over %d holders",
                lease.service, self.me, what, slices, lease.holders)  # fmt: skip
