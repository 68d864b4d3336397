"""Where layers come from besides code: a file, and the registry's governance documents.

Registry keys (each a JSON document with a compare-and-set version):

* ``governance/_global/cluster`` -- settings for every service (the global level);
* ``governance/<service>/cluster`` -- a service's settings, ``methods`` inside;
* ``governance/<service>/routing`` -- its routing rules, a list (or ``{"rules": [...]}``);
* ``governance/<service>/weights`` -- dynamic weights (``rpc.balance.WeightsDocument``);
* ``governance/<service>/mask`` -- mask degradation (``rpc.degrade.parse_mask``);
* ``governance/<service>/quota`` -- its cluster-wide quota (``rpc.flow.QuotaRule``).

A provider states its own settings in its registration metadata under ``governance``
(the provider level). A file holds ``{service or "*": layer}`` as JSON or TOML.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._errors import BadRequestError
from ._layers import ANY, LayeredConfig, validate_layer

__all__ = ["GLOBAL_KEY", "effective_from_registry", "read_file", "validate_governance"]

GLOBAL_KEY = "governance/_global/cluster"


def validate_governance(key: str, value: Any) -> None:
    """Refuse a governance document no consumer could use (others pass untouched)."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "governance":
        return
    kind = parts[2]
    try:
        if kind == "weights":
            from ..balance import WeightsDocument

            WeightsDocument.parse(value)
        elif kind == "routing":
            validate_layer({"routers": routing_rules(value)})
        elif kind == "cluster":
            validate_layer(value)
        elif kind == "mask":
            from ..degrade import parse_mask

            parse_mask(value)
        elif kind == "flow":
            from ..flow import validate_flow

            validate_flow(parts[1], value)
        elif kind == "quota":
            from ..flow import QuotaRule

            QuotaRule.parse(value)
    except BadRequestError as exc:
        raise BadRequestError(f"config {key!r}: {exc.message}") from None


def routing_rules(value: Any) -> Any:
    """The rules of a routing document: a list, or the list under ``rules``."""
    return value.get("rules", []) if isinstance(value, Mapping) else value


def read_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Layers by service (``"*"``: every service) from a JSON or TOML file, validated."""
    path = Path(path)
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise BadRequestError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequestError(f"{path}: a map of service names (or '*') to settings")
    layers = {}
    for service, layer in data.items():
        try:
            layers[service] = validate_layer(layer)
        except BadRequestError as exc:
            raise BadRequestError(f"{path}: {service}: {exc.message}") from None
    return layers


def effective_from_registry(
    registry: Any, service: str, local: Mapping[str, Mapping[str, Any]] | None = None
) -> LayeredConfig:
    """The layers a consumer of ``service`` would apply: the registry's documents, the
    providers' ``governance`` metadata, and ``local`` (a file's layers) -- for
    ``callscope config effective``."""
    config = LayeredConfig()
    found = registry.get_config(GLOBAL_KEY)
    if found is not None:
        config.put("global", ANY, found.value, source="registry")
    layer: dict[str, Any] = {}
    cluster = registry.get_config(f"governance/{service}/cluster")
    if cluster is not None:
        layer.update(cluster.value)
    routing = registry.get_config(f"governance/{service}/routing")
    if routing is not None:
        layer["routers"] = routing_rules(routing.value)
    if layer:
        config.put("consumer", service, layer, source="registry")
    for instance in registry.lookup(service)[:1]:
        stated = instance.metadata.get("governance")
        if stated:
            config.put("provider", service, stated, source="registry")
    for scope, values in (local or {}).items():
        if scope in (ANY, service):
            config.put("consumer", scope, values, source="file")
    return config
