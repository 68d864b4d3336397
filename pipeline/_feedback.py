"""Weights back into routing: the ``governance/<service>/weights`` document, and history.

:func:`feed_back` is one window's step of the closed loop: read the factors in force from
the registry, decide (:func:`compute_weights`), write the document with compare-and-set
(a concurrent writer makes it read and decide again), and store each change with its
reason (``storage.WeightChange``) for the dashboard. The registry is any
``rpc.registry.Registry``; this module needs none of rpc's code to talk to it.

The document (docs/architecture.md, "The weights document")::

    {"schema": 1, "source": "callscope-pipeline", "computed_at_us": ...,
     "weights": {"10.0.0.7:7001": {"weight": 40, "source": "latency ...", "updated_us": ...}}}
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from callscope_contract import ErrorCode, weights_key
from storage import AnalyticsStore, WeightChange

from ._weights import InstanceHealth, WeightDecision, WeightPolicy, compute_weights

__all__ = ["WEIGHTS_SOURCE", "feed_back", "weights_document"]

WEIGHTS_SOURCE = "callscope-pipeline"
SCHEMA = 1
MAX_REASON = 200  # the document's limit on a source string
ATTEMPTS = 5


class _Registry(Protocol):
    def get_config(self, key: str) -> Any: ...
    def put_config(self, key: str, value: Any, expected: int | None = None) -> Any: ...


def weights_document(
    decisions: Sequence[WeightDecision],
    now_us: int,
    standing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The document with ``decisions`` applied over the ``standing`` one's instances."""
    weights = dict(_entries(standing))
    for d in decisions:
        if d.changed or d.instance not in weights:
            weights[d.instance] = {
                "weight": d.weight, "source": d.reason[:MAX_REASON], "updated_us": now_us,
            }  # fmt: skip
    return {"schema": SCHEMA, "source": WEIGHTS_SOURCE, "computed_at_us": now_us,
            "weights": weights}  # fmt: skip


def feed_back(
    registry: _Registry,
    service: str,
    health: Sequence[InstanceHealth],
    *,
    analytics: AnalyticsStore | None = None,
    policy: WeightPolicy = WeightPolicy(),  # noqa: B008 (frozen)
    now_us: int | None = None,
) -> list[WeightDecision]:
    """Decide the weights of ``service``'s instances from ``health``; publish the changes."""
    now_us = int(time.time() * 1_000_000) if now_us is None else now_us
    key = weights_key(service)
    for attempt in range(ATTEMPTS):
        found = registry.get_config(key)
        standing = found.value if found is not None else None
        current = {a: e["weight"] for a, e in _entries(standing).items()}
        decisions = compute_weights(health, current, policy)
        changed = [d for d in decisions if d.changed]
        if not changed:
            return decisions
        document = weights_document(decisions, now_us, standing)
        try:
            registry.put_config(key, document, expected=found.version if found else 0)
        except Exception as exc:  # a lost compare-and-set race: read and decide again
            if getattr(exc, "code", "") != ErrorCode.CONFLICT or attempt == ATTEMPTS - 1:
                raise
            continue
        if analytics is not None:
            analytics.write_weights(
                WeightChange(service, d.instance, now_us, d.weight, d.reason) for d in changed
            )
        return decisions
    raise AssertionError("unreachable")  # pragma: no cover


def _entries(document: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A standing document's instances, full form or shorthand, as full entries."""
    if not document:
        return {}
    weights = document.get("weights", document)
    out = {}
    for address, entry in weights.items():
        if isinstance(entry, Mapping):
            out[address] = dict(entry)
        else:
            out[address] = {"weight": entry, "source": "", "updated_us": 0}
    return out
