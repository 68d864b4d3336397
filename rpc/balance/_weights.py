"""Provider weights as a consumer applies them: the provider's own * the registry's document.

The document ``governance/<service>/weights`` is written by the analytics pipeline
(or by hand with ``callscope config put``) and watched by every consumer, so a
change moves traffic within one push. Its format (docs/architecture.md, "Weights")::

    {"schema": 1, "source": "pipeline.latency", "computed_at_us": 1764150000123456,
     "weights": {"10.0.0.7:7001": {"weight": 100, "source": "p99", "updated_us": ...},
                 "10.0.0.8:7001": 40}}

or, shorthand, the bare map ``{"10.0.0.7:7001": 100, "10.0.0.8:7001": 40}``. A
dynamic weight is a factor in percent: 100 leaves the provider's own weight as it is,
0 sends it nothing (unless every provider is at 0), 1000 at most ten times more;
instances the document does not name keep 100. ``version`` is the registry
document's own (compare-and-set) version.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from callscope_contract import weights_key

from .._directory import Provider
from .._errors import BadRequestError

__all__ = ["InstanceWeight", "WeightTable", "WeightsDocument", "weights_key"]

SCHEMA = 1
NEUTRAL = 100
MAX_FACTOR = 10_000
MAX_INSTANCES = 10_000


@dataclass(frozen=True, slots=True)
class InstanceWeight:
    """One instance's dynamic weight: the factor, who set it and when (µs since the epoch)."""

    weight: int
    source: str = ""
    updated_us: int = 0


@dataclass(frozen=True, slots=True)
class WeightsDocument:
    """The parsed ``governance/<service>/weights`` document."""

    weights: Mapping[str, InstanceWeight] = field(default_factory=dict)
    source: str = ""
    computed_at_us: int = 0
    version: int = 0
    schema: int = SCHEMA

    @staticmethod
    def parse(value: Any, version: int = 0) -> WeightsDocument:
        """Validate and read a document (full or shorthand); a bad one is a
        ``BAD_REQUEST`` naming the field."""
        if not isinstance(value, Mapping):
            raise BadRequestError("a weights document is a map")
        if "weights" not in value:  # the shorthand: address → factor
            return WeightsDocument(_instances(value, "weights"), version=version)
        unknown = set(value) - {"schema", "source", "computed_at_us", "weights"}
        if unknown:
            raise BadRequestError(f"weights document: unknown field {sorted(unknown)[0]!r}")
        schema = value.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise BadRequestError(f"weights document: schema {schema!r} (this reader knows 1)")
        return WeightsDocument(
            _instances(value["weights"], "weights"),
            source=_text(value.get("source", ""), "source"),
            computed_at_us=_micros(value.get("computed_at_us", 0), "computed_at_us"),
            version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "source": self.source,
            "computed_at_us": self.computed_at_us,
            "weights": {
                address: {"weight": w.weight, "source": w.source, "updated_us": w.updated_us}
                for address, w in self.weights.items()
            },
        }

    def factor(self, address: str) -> int:
        found = self.weights.get(address)
        return NEUTRAL if found is None else found.weight


def _instances(value: Any, where: str) -> dict[str, InstanceWeight]:
    if not isinstance(value, Mapping):
        raise BadRequestError(f"weights document: {where} must map addresses to weights")
    if len(value) > MAX_INSTANCES:
        raise BadRequestError(f"weights document: more than {MAX_INSTANCES} instances")
    out = {}
    for address, item in value.items():
        if not isinstance(address, str) or ":" not in address or len(address) > 300:
            raise BadRequestError(f"weights document: {address!r} is not a host:port address")
        if isinstance(item, Mapping):
            unknown = set(item) - {"weight", "source", "updated_us"}
            if unknown or "weight" not in item:
                raise BadRequestError(
                    f"weights document: {address} has weight, source, updated_us"
                    + (f", not {sorted(unknown)[0]!r}" if unknown else " (weight missing)")
                )
            out[address] = InstanceWeight(
                _factor(item["weight"], address),
                _text(item.get("source", ""), f"{address}.source"),
                _micros(item.get("updated_us", 0), f"{address}.updated_us"),
            )
        else:
            out[address] = InstanceWeight(_factor(item, address))
    return out


def _factor(value: Any, address: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FACTOR:
        raise BadRequestError(
            f"weights document: {address}'s weight must be a non-negative integer (0..{MAX_FACTOR})"
        )
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise BadRequestError(f"weights document: {where} must be a string of at most 200")
    return value


def _micros(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequestError(f"weights document: {where} must be a non-negative integer (µs)")
    return value


class WeightTable:
    """The weights a consumer applies per service: documents as pushed, and warm-up.

    :meth:`apply` returns the providers with their effective weights, cached while the
    directory's list and the document stay the same (a call pays one dict lookup).
    """

    def __init__(self) -> None:
        self._documents: dict[str, WeightsDocument] = {}
        self._cache: dict[str, tuple[Sequence[Provider], int, float, Sequence[Provider]]] = {}
        self._warm_until: dict[str, float] = {}  # service → when its last warm-up ends

    def document(self, service: str) -> WeightsDocument | None:
        return self._documents.get(service)

    def set_document(self, service: str, document: WeightsDocument | None) -> None:
        if document is None:
            self._documents.pop(service, None)
        else:
            self._documents[service] = document
        self._cache.pop(service, None)

    def apply(
        self, service: str, providers: Sequence[Provider], warmup: float = 0.0
    ) -> Sequence[Provider]:
        document = self._documents.get(service)
        version = -1 if document is None else document.version
        cached = self._cache.get(service)
        if (
            cached is not None
            and cached[0] is providers
            and cached[1] == version
            and cached[2] == warmup
            and (not warmup or time.time() >= self._warm_until.get(service, 0.0))
        ):
            return cached[3]
        weighted = self._weigh(service, providers, document, warmup)
        self._cache[service] = (providers, version, warmup, weighted)
        return weighted

    def _weigh(
        self,
        service: str,
        providers: Sequence[Provider],
        document: WeightsDocument | None,
        warmup: float,
    ) -> Sequence[Provider]:
        now = time.time()
        warm_until = 0.0
        out = []
        changed = False
        for provider in providers:
            weight = provider.weight
            if document is not None:
                weight = weight * document.factor(provider.address) // NEUTRAL
            if warmup and provider.start_time:
                uptime = now - provider.start_time
                if uptime < warmup:  # Dubbo's ramp: weight * uptime / warmup, at least 1
                    weight = max(1, math.ceil(weight * max(uptime, 0.0) / warmup))
                    warm_until = max(warm_until, provider.start_time + warmup)
            if weight != provider.weight:
                changed = True
                provider = replace(provider, weight=weight)
            out.append(provider)
        self._warm_until[service] = warm_until
        return tuple(out) if changed else providers
