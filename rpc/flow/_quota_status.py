"""A service's quota as the registry sees it: the rule, and who holds which slice now.

For operators (``callscope quota SERVICE``) and dashboards: read from the registry
alone, so it shows every instance's slice, not only this process's
(:meth:`~rpc.flow.QuotaLimiter.snapshot` shows one instance from inside).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._lease_ledger import lease_key, live_holders
from ._quota_rule import QuotaRule, quota_key

if TYPE_CHECKING:
    from ..registry import Registry

__all__ = ["quota_status"]


def quota_status(registry: Registry, service: str) -> dict[str, Any]:
    """``{"rule", "ledger_version", "holders", "granted"}``: ``granted`` sums the live
    slices per scope (at most the cap; below it while a holder's slice is being moved)."""
    rule_doc = registry.get_config(quota_key(service))
    ledger = registry.get_config(lease_key(service))
    now = time.time()
    holders = live_holders(ledger.value if ledger is not None else None, now)
    caps = QuotaRule.parse(rule_doc.value).limits() if rule_doc is not None else {}
    return {
        "service": service,
        "rule": None if rule_doc is None else {"version": rule_doc.version, **rule_doc.value},
        "ledger_version": None if ledger is None else ledger.version,
        "holders": {
            name: {
                "lapses_in_s": round(until - now, 3),
                "limits": {
                    s: {"demand": d, "granted": round(g, 3)} for s, (d, g) in slices.items()
                },
            }
            for name, (until, slices) in sorted(holders.items())
        },
        "granted": {
            scope: {
                "cap": cap,
                "leased": round(sum(s[scope][1] for _, s in holders.values() if scope in s), 3),
            }
            for scope, cap in caps.items()
        },
    }
