"""Governance configuration of a consumer: settings per service and method, in layers.

consumer-local > provider > global, method over service; each level set in code,
a file or the registry (see docs/architecture.md, "Configuration").
"""

from ._layers import LEVELS, SOURCES, LayeredConfig, validate_layer
from ._settings import FAILBACK_ACTIONS, Settings, declared_idempotent, idempotent

__all__ = [
    "FAILBACK_ACTIONS",
    "LEVELS",
    "SOURCES",
    "LayeredConfig",
    "Settings",
    "declared_idempotent",
    "idempotent",
    "validate_layer",
]
