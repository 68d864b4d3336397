"""A service's cluster-wide quota, as kept in the registry at ``governance/<service>/quota``.

The document (JSON, compare-and-set versioned like every governance document)::

    {"qps": 300, "methods": {"create": 50}, "period_s": 1.0, "burst_s": 0.1}

``qps`` caps the calls per second of the whole service over every provider instance,
``methods`` caps single methods (both may be given; at least one must be);
``period_s`` is the lease period T every instance renews its slice on; ``burst_s`` is
how many seconds of its slice an instance may spend at once. Every field is checked
before the document is written: a NaN, an infinity, a negative number or a wrong
type is a ``BAD_REQUEST`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import BadRequestError

__all__ = ["ANY", "MAX_QPS", "PERIOD_RANGE", "QuotaRule", "quota_key"]

MAX_QPS = 1e9
PERIOD_RANGE = (0.05, 60.0)
"""Seconds: shorter renews too often for a registry; longer rebalances too slowly."""
BURST_RANGE = (0.0, 10.0)
MAX_METHODS = 256
_FIELDS = ("qps", "methods", "period_s", "burst_s")
ANY = "*"
"""The scope of the service-wide cap in :meth:`QuotaRule.limits` and in lease documents."""


def quota_key(service: str) -> str:
    """The registry key of ``service``'s quota rule."""
    return f"governance/{service}/quota"


def _number(value: Any, what: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRequestError(f"{what} must be a finite number in [{low:g}, {high:g}], not {value}")
    return float(value)


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """The parsed rule; ``qps`` ``None`` means no service-wide cap (only ``methods``)."""

    qps: float | None = None
    methods: Mapping[str, float] = field(default_factory=dict)
    period_s: float = 1.0
    burst_s: float = 0.1

    @staticmethod
    def parse(value: Any) -> QuotaRule:
        """Validate a rule document; raises BAD_REQUEST naming the first bad field."""
        if not isinstance(value, Mapping):
            raise BadRequestError(f"a quota rule must be a map, not {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in _FIELDS)
        if unknown:
            raise BadRequestError(
                f"unknown quota field {unknown[0]!r} (known: {', '.join(_FIELDS)})"
            )
        qps = value.get("qps")
        if qps is not None:
            qps = _number(qps, "qps", 0.0, MAX_QPS)
        methods = value.get("methods", {})
        if not isinstance(methods, Mapping):
            raise BadRequestError(f"methods must be a map, not {type(methods).__name__}")
        if len(methods) > MAX_METHODS:
            raise BadRequestError(f"methods lists {len(methods)} methods (at most {MAX_METHODS})")
        caps = {}
        for name, cap in methods.items():
            if not isinstance(name, str) or not name.isprintable() or name in ("", ANY):
                raise BadRequestError(f"methods: bad method name {name!r}")
            caps[name] = _number(cap, f"methods.{name}", 0.0, MAX_QPS)
        if qps is None and not caps:
            raise BadRequestError("a quota rule needs qps or methods")
        return QuotaRule(
            qps=qps,
            methods=caps,
            period_s=_number(value.get("period_s", 1.0), "period_s", *PERIOD_RANGE),
            burst_s=_number(value.get("burst_s", 0.1), "burst_s", *BURST_RANGE),
        )

    def limits(self) -> dict[str, float]:
        """Each capped scope and its cluster-wide rate: ``"*"`` for the service, else a method."""
        found = dict(self.methods)
        if self.qps is not None:
            found[ANY] = self.qps
        return found
