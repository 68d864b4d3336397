"""What ``callscope config effective`` prints: every layer merged, and where each value came from.

The report holds the effective :class:`Settings` of a (service, method), the layers
that made them (weakest first), ``origin`` -- for each key set by some layer, the
strongest layer that set it --, the breaker rules with their defaults filled in, the
mask in force for the method (or the service's whole mask), and every
``governance/<service>/*`` document with its version (flow, quota and documents of
kinds this module does not know are listed as stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._sources import effective_from_registry

__all__ = ["effective_report"]


def effective_report(
    registry: Any,
    service: str,
    method: str = "",
    local: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    from ..degrade import BreakerRules, parse_mask

    config = effective_from_registry(registry, service, local)
    effective = config.effective(service, method)
    layers = config.explain(service, method)
    origin: dict[str, str] = {}
    for layer in layers:
        for key in layer["settings"]:
            origin[key] = f"{layer['from']} {layer['scope']}"
    documents = {
        doc.key.rsplit("/", 1)[-1]: {"key": doc.key, "version": doc.version, "value": doc.value}
        for doc in registry.list_config(f"governance/{service}/")
    }
    report: dict[str, Any] = {
        "service": service,
        "method": method,
        "effective": effective.to_dict(),
        "origin": origin,
        "layers": layers,
    }
    if effective.breaker is not None:
        report["breaker"] = _rules_dict(BreakerRules.parse(effective.breaker))
    report["mask"] = None
    mask_doc = documents.get("mask")
    rule = parse_mask(mask_doc["value"]) if mask_doc is not None else None
    if mask_doc is not None and rule is not None:
        if not method:
            report["mask"] = mask_doc["value"]
        elif (fallback := rule.fallback(method)) is not None:
            where = f"{mask_doc['key']} version {mask_doc['version']}"
            report["mask"] = {**fallback.to_dict(), "from": where}
    report["documents"] = documents
    return report


def _rules_dict(rules: Any) -> dict[str, Any]:
    out = {name: getattr(rules, name) for name in rules.__dataclass_fields__}
    out["errors"] = sorted(rules.errors)
    out["fallback"] = rules.fallback.to_dict()
    out["probes_to_close"] = rules.needed
    return out
