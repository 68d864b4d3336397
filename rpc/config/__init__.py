"""Governance configuration of a consumer: settings per service and method, in layers.

consumer-local > provider > global, method over service; each level set in code,
a file or the registry (see docs/architecture.md, "Configuration").
"""

from ._layers import LEVELS, SOURCES, LayeredConfig, validate_layer
from ._report import effective_report
from ._settings import FAILBACK_ACTIONS, Settings, declared_idempotent, idempotent
from ._sources import (
    GLOBAL_KEY,
    effective_from_registry,
    read_file,
    routing_rules,
    validate_governance,
)

__all__ = [
    "FAILBACK_ACTIONS",
    "GLOBAL_KEY",
    "LEVELS",
    "SOURCES",
    "LayeredConfig",
    "Settings",
    "declared_idempotent",
    "effective_from_registry",
    "effective_report",
    "idempotent",
    "read_file",
    "routing_rules",
    "validate_governance",
    "validate_layer",
]
