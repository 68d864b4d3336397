"""The lease ledger: who holds which slice of a service's quota pool, one registry document.

Key ``leases/<service>/quota``; value::

    {"holders": {"10.0.0.7:7001": {"until": 1764150001.5,
                                   "limits": {"*": [120.0, 100.0], "create": [9.5, 16.6]}}}}

Each holder lists, per capped scope (``"*"`` the service, else a method), its recent
demand (arrivals per second, admitted or not) and the rate it was granted, valid until
``until`` (wall clock). An instance renews by reading the ledger, computing its own
grant with :func:`renew` and writing it back with the version it read (compare-and-
set): grants of live holders never add up to more than the cap, because each writer
takes at most what the others do not hold. Expired entries, and entries of instances
the registry saw leave, are dropped by whoever writes next. Pure functions: the
network side is :mod:`._lease_client`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

__all__ = ["Renewal", "lease_key", "live_holders", "release", "renew", "share", "signal_key"]

Slice = tuple[float, float]  # demand (calls/s), grant (calls/s)


def lease_key(service: str) -> str:
    """The registry key of ``service``'s lease ledger."""
    return f"leases/{service}/quota"


def signal_key(service: str) -> str:
    """The registry key holders watch to renew at once: written (no compare-and-set) by
    an instance that joined, left, or holds less than its fair share."""
    return f"leases/{service}/quota-signal"


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def live_holders(
    value: Any, now: float, departed: Collection[str] = ()
) -> dict[str, tuple[float, dict[str, Slice]]]:
    """The unexpired, well-formed holders of a ledger value: ``{instance: (until, slices)}``.

    A ledger is written by every instance, so a malformed entry is skipped, not fatal.
    """
    holders = value.get("holders") if isinstance(value, Mapping) else None
    if not isinstance(holders, Mapping):
        return {}
    found = {}
    for instance, entry in holders.items():
        if not isinstance(entry, Mapping) or instance in departed:
            continue
        until: Any = entry.get("until")
        limits = entry.get("limits")
        if not _finite(until) or until <= now or not isinstance(limits, Mapping):
            continue
        slices = {}
        for scope, pair in limits.items():
            if isinstance(pair, list | tuple) and len(pair) == 2 and all(map(_finite, pair)):
                slices[str(scope)] = (max(0.0, float(pair[0])), max(0.0, float(pair[1])))
        found[str(instance)] = (float(until), slices)
    return found


def share(cap: float, demand: float | None, others: Collection[Slice], newcomers: int = 0) -> float:
    """This instance's grant of ``cap`` given its ``demand`` and the others' slices.

    Under contention (demands add up past the cap) each gets the cap in proportion to
    its demand; otherwise each gets its demand plus an equal part of what is left, so
    a quiet instance can still absorb a burst. An instance with no history yet
    (``demand`` ``None``), and each of ``newcomers`` (listed instances without a slice
    yet), counts as wanting an equal share. The grant never exceeds
    what the others leave free, so the pool is never over-committed.
    """
    target, free, _ = _fair(cap, demand, others, newcomers)
    return max(0.0, min(target, free))


def _fair(
    cap: float, demand: float | None, others: Collection[Slice], newcomers: int
) -> tuple[float, float, float]:
    """(my fair share, what the others leave free, the demand I count as mine)."""
    count = len(others) + newcomers + 1
    mine = cap / count if demand is None else demand
    total = mine + sum(d for d, _ in others) + newcomers * cap / count
    target = mine + (cap - total) / count if total <= cap else cap * mine / total
    return target, cap - sum(g for _, g in others), mine


class Renewal(NamedTuple):
    """What one renewal wrote and what it means for the renewing instance."""

    value: dict[str, Any]  # the new ledger
    grants: dict[str, float]  # my slice per scope
    holders: int  # live holders, me included
    short: dict[str, float]  # per scope, how far my slice is below my fair share
    joined: bool  # I held no slice before this renewal
    freed: dict[str, float]  # per scope, the slices of the holders this renewal dropped


def renew(
    value: Any,
    me: str,
    caps: Mapping[str, float],
    demands: Mapping[str, float | None],
    now: float,
    term: float,
    departed: Collection[str] = (),
    members: Collection[str] = (),
) -> Renewal:
    """The ledger with ``me``'s slices renewed.

    ``members`` (the instances the registry lists) that hold no slice yet count as
    wanting an equal share, so the first to renew does not take the whole pool.
    """
    holders = live_holders(value, now, departed)
    joined = holders.pop(me, None) is None
    dropped = live_holders(value, float("-inf")).items()  # every well-formed entry
    gone = [slices for name, (_, slices) in dropped if name not in holders and name != me]
    newcomers = len(set(members) - set(holders) - {me})
    grants, short, mine = {}, {}, {}
    for scope, cap in caps.items():
        others = [slices[scope] for _, slices in holders.values() if scope in slices]
        target, free, wanted = _fair(cap, demands.get(scope), others, newcomers)
        grants[scope] = max(0.0, min(target, free))
        short[scope] = max(0.0, target - grants[scope])
        # a newcomer's stand-in demand is written too, so the others make room for it
        mine[scope] = [round(wanted, 3), grants[scope]]
    entries = _entries(holders)
    entries[me] = {"until": round(now + term, 3), "limits": mine}
    freed = {scope: sum(g.get(scope, (0.0, 0.0))[1] for g in gone) for scope in caps}
    return Renewal({"holders": entries}, grants, len(entries), short, joined, freed)


def release(value: Any, me: str, now: float) -> dict[str, Any] | None:
    """The ledger without ``me`` (and without expired entries); ``None`` if ``me`` is absent."""
    holders = value.get("holders") if isinstance(value, Mapping) else None
    if not isinstance(holders, Mapping) or me not in holders:
        return None
    kept = live_holders(value, now)
    kept.pop(me, None)
    return {"holders": _entries(kept)}


def _entries(holders: Mapping[str, tuple[float, dict[str, Slice]]]) -> dict[str, Any]:
    return {
        name: {"until": until, "limits": {s: list(p) for s, p in slices.items()}}
        for name, (until, slices) in holders.items()
    }
