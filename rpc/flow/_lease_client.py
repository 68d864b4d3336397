"""One instance's side of the quota pool: lease a slice every period, keep it through outages.

Per watched service, a background thread (never the provider's event loop):

* watches ``governance/<service>/quota`` (the rule, pushed live) and the signal
  ``leases/<service>/quota-signal``; looks up the service's registrations every few
  periods (who is alive: a departed instance's slice is reclaimed by the next writer; a
  lookup, not a subscription, so a provider is not listed as its own consumer);
* once a period T (the rule's ``period_s``, each holder at its own phase of it), reads
  the ledger ``leases/<service>/quota``, computes its slice from its recent demand
  (:func:`~._lease_ledger.renew`) and writes it back with the version it read -- one
  read and one write per instance per period, none per call;
* an instance that holds less than its fair share (a newcomer, say) or leaves with a
  slice of more than 5% of the cap writes the signal; the others renew early on its
  push (not sooner than T/4 after their last renewal), so the pool shifts within a
  period. Smaller moves wait for the periodic renewals: with many instances a signal
  for each would cost every holder a renewal. The ledger itself is not watched: every
  write of it would be fetched by every holder (n squared reads per period);
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
from ._lease_ledger import Renewal, lease_key, live_holders, release, renew, signal_key
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
"""A slice this far (fraction of the cap) below its fair share signals the others."""
HISTORY = 32
LOOKUP_EVERY = 5
"""Periods between reads of the registrations: a lapse (2 T) or a leaver's own release
finds departures sooner; the list only reserves room for newcomers and sizes the local
share, and reading it costs the registry n lookups (on ZooKeeper, n reads each)."""
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
    ledger: Any = None  # the last ledger value read or written
    signalled: float = float("-inf")  # when I last asked the others to renew (monotonic)
    signals: int = 0  # signals heard from the others
    looked_up: float = float("-inf")  # when the registrations were last read (monotonic)
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

    def _on_signal(self, service: str, doc: ConfigDocument | None) -> None:
        """Someone joined, left or is short of its share: renew soon (not before T/4 after
        my last renewal), so the pool shifts within a period."""
        lease = self.leases[service]
        by = doc.value.get("by") if doc is not None and isinstance(doc.value, dict) else None
        with self._lock:
            if by in (None, self.me) or lease.rule is None or lease.leased_at is None:
                return
            lease.signals += 1  # a renewal under way re-reads this when it reschedules
            lease.due = min(lease.due, lease.leased_at + EARLY_GAP * lease.period)
            if doc is not None and doc.value.get("why") in ("left", "freed"):
                lease.looked_up = float("-inf")  # the registrations changed: read them again
        self._wake.set()

    def _members(self, lease: ServiceLease, instances: list[ServiceInstance]) -> None:
        with self._lock:
            lease.members = {i.address for i in instances}
            holders = set(live_holders(lease.ledger, time.time()))
            # bounded: a departed instance is remembered while its slice is in the ledger
            lease.seen = (lease.seen | lease.members) & (lease.members | holders)

    # -- the thread -----------------------------------------------------------
    def _run(self) -> None:
        for service in self.leases:
            self._watch(service)
        while self.leases and not self._closed:
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
                signal_key(service), lambda d: self._on_signal(service, d)
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
        heard = lease.signals
        try:
            if now - lease.looked_up >= LOOKUP_EVERY * period:
                self._members(lease, self.registry.lookup(lease.service))
                lease.looked_up = now
            renewal, started = self._exchange(lease, caps)
        except RpcError as err:
            self._failed(lease, err, now)
            return
        grants, holders = renewal.grants, renewal.holders
        # Good until the ledger says it lapses (counted from before the write, never later);
        # then the equal share, over every holder or registered instance known.
        with self._lock:
            share_of = max(1, holders, len(lease.members))
        for scope, bucket in lease.buckets.items():
            cap = caps.get(scope, 0.0)
            bucket.lease(grants.get(scope, 0.0), started + 2 * period, cap / share_of)
        now = time.monotonic()
        changed = lease.state != "leased" or any(
            abs(grants[s] - lease.grants.get(s, 0.0)) > 0.1 * max(caps[s], 1e-9) for s in caps
        )
        lease.grants, lease.holders, lease.leased_at = grants, holders, started
        lease.state, lease.renewals, lease.failures = "leased", lease.renewals + 1, 0
        lease.due = min(self._next_slot(lease, now), self._next_expiry(lease, now))
        short = any(gap > REBALANCE_SLACK * caps[s] for s, gap in renewal.short.items())
        with self._lock:
            # short: the others hold my share, come back once they shrank; or a signal
            # came while this renewal read a ledger that may predate it
            if short or lease.signals != heard:
                lease.due = min(lease.due, now + EARLY_GAP * period)
        freed = any(f > REBALANCE_SLACK * caps[s] for s, f in renewal.freed.items())
        if freed:  # I dropped a departed or lapsed holder's slice: let the others share it
            self._signal(lease, "freed")
            with self._lock:  # and read the registrations again, soon (it may still be listed)
                lease.looked_up = float("-inf")
                lease.due = min(lease.due, now + EARLY_GAP * period)
        elif short and now - lease.signalled >= period:  # at most once a period
            lease.signalled = now
            self._signal(lease, "joined" if renewal.joined else "short")
        if changed:
            self._log(lease, logging.INFO, "leased")

    def _next_slot(self, lease: ServiceLease, now: float) -> float:
        """My next renewal (monotonic), 0.4..1.4 periods away: holders take turns, each at
        its own phase of the wall-clock period (by its rank among the holders), so their
        compare-and-set writes of the one ledger rarely collide."""
        period, wall = lease.period, time.time()
        names = sorted(live_holders(lease.ledger, wall))
        rank = names.index(self.me) if self.me in names else random.randrange(max(1, len(names)))
        phase = period * rank / max(1, len(names))
        slot = wall - wall % period + phase  # this period's turn
        while slot < wall + 0.4 * period:  # 0.4..1.4 periods: the lease lasts 2
            slot += period
        return now + slot - wall

    def _next_expiry(self, lease: ServiceLease, now: float) -> float:
        """When another holder's slice lapses (monotonic): a crashed holder's slice is
        taken back then, not a period later."""
        wall = time.time()
        ends = [until for name, (until, _) in live_holders(lease.ledger, wall).items()
                if name != self.me]  # fmt: skip
        return now + min(ends) - wall + 0.01 if ends else float("inf")

    def _exchange(self, lease: ServiceLease, caps: dict[str, float]) -> tuple[Renewal, float]:
        """Read the ledger, take my slice, write it back; retried when another writer won.
        Returns the renewal and when (monotonic) the slice was computed."""
        key = lease_key(lease.service)
        for attempt in range(CAS_ATTEMPTS):
            doc = self.registry.get_config(key)
            with self._lock:
                lease.ledger = doc.value if doc is not None else None  # who holds, if I fail
                departed, members = lease.departed, set(lease.members)
            started, wall = time.monotonic(), time.time()
            renewal = renew(
                doc.value if doc is not None else None,
                self.me,
                caps,
                lease.demands,
                wall,
                2 * lease.period,
                departed,
                members,
            )
            try:
                written = self.registry.put_config(
                    key, renewal.value, expected=doc.version if doc else 0
                )
            except RpcError as err:
                if err.code == "CONFLICT":  # back off by a few of our own round trips
                    took = time.monotonic() - started
                    time.sleep(min(random.uniform(0, took * 2**attempt), lease.period / 8))
                    continue
                raise
            with self._lock:
                lease.ledger = written.value
            return renewal, started
        raise RpcError(f"lease ledger of {lease.service} kept changing", code="CONFLICT")

    def _failed(self, lease: ServiceLease, err: RpcError, now: float) -> None:
        lease.failures += 1
        lease.last_error = str(err)
        period = lease.period
        if lease.leased_at is None:  # never leased: the equal share of everyone known
            state = "local-share"
            with self._lock:
                holders = set(live_holders(lease.ledger, time.time())) | {self.me}
                count = max(len(holders), len(lease.members))
            caps = lease.rule.limits() if lease.rule is not None else {}
            for scope, bucket in lease.buckets.items():
                bucket.lease(0.0, 0.0, caps.get(scope, 0.0) / count)
        elif now < lease.leased_at + 2 * period:
            state = "grace"
        else:
            state = "local-share"
        if err.code == "CONFLICT":  # a busy ledger: try again soon, at a random moment
            lease.due = now + random.uniform(0.05, 0.25) * period
        else:
            lease.due = now + min(period / 4, 1.0)
        if state != lease.state:
            lease.state = state
            self._log(lease, logging.WARNING, f"cannot lease ({err})")

    def _signal(self, lease: ServiceLease, why: str) -> None:
        """Tell the other holders to renew now (a plain write: it never conflicts)."""
        value = {"by": self.me, "why": why, "at": round(time.time(), 3)}
        try:
            self.registry.put_config(signal_key(lease.service), value)
        except RpcError as err:
            log.debug("quota %s: signal not sent: %s", lease.service, err)

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
                    caps = lease.rule.limits() if lease.rule is not None else {}
                    if any(g > REBALANCE_SLACK * caps.get(s, 0.0) for s, g in lease.grants.items()):
                        self._signal(lease, "left")  # a slice worth moving at once
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
