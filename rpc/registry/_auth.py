"""Who may do what: principals with read or read-write grants per namespace.

Namespaces are paths: ``services/<service>`` for registrations and
``config/<key>`` for configuration documents. A grant covers a namespace prefix
(``""`` is everything); the longest matching prefix decides. A principal with no
grant for a namespace may neither read nor write it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import PermissionDeniedError

READ = "read"
WRITE = "write"
_MODES = (READ, WRITE)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a name and its grants ``{namespace prefix: read|write}``."""

    name: str
    grants: Mapping[str, str] = field(default_factory=lambda: {"": WRITE})

    def __post_init__(self) -> None:
        for prefix, mode in self.grants.items():
            if mode not in _MODES:
                raise ValueError(f"grant for {prefix!r} must be 'read' or 'write', not {mode!r}")

    def mode(self, namespace: str) -> str | None:
        best: tuple[int, str] | None = None
        for prefix, mode in self.grants.items():
            if _covers(prefix, namespace) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), mode)
        return best[1] if best else None

    def can(self, namespace: str, write: bool) -> bool:
        mode = self.mode(namespace)
        return mode == WRITE or (mode == READ and not write)

    def reaches(self, namespace: str) -> bool:
        """Does any grant (read or write) cover ``namespace`` or something below it?"""
        namespace = namespace.strip("/")
        return any(
            _covers(prefix, namespace) or prefix.strip("/").startswith(namespace + "/")
            for prefix in self.grants
        )

    def check(self, namespace: str, write: bool) -> None:
        if not self.can(namespace, write):
            what = "write" if write else "read"
            raise PermissionDeniedError(f"{self.name!r} may not {what} {namespace!r}")


ADMIN = Principal("admin")
"""Used when the server runs without authentication: everything is allowed."""


def _covers(prefix: str, namespace: str) -> bool:
    prefix = prefix.strip("/")
    return not prefix or namespace == prefix or namespace.startswith(prefix + "/")


def load_tokens(path: str | Path) -> dict[str, Principal]:
    """Read a tokens file: ``{"tokens": {"<token>": {"name": ..., "grants": {...}}}}``."""
    data: Any = json.loads(Path(path).read_text())
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, dict) or not tokens:
        raise ValueError(f"{path}: expected {{'tokens': {{token: {{name, grants}}}}}}")
    out = {}
    for token, spec in tokens.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("grants", {}), dict):
            raise ValueError(f"{path}: token entries need a name and a grants map")
        out[str(token)] = Principal(str(spec.get("name", "anonymous")), dict(spec["grants"]))
    return out
