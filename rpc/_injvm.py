"""Services exported in this process, so a local call skips the socket (injvm)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._server import Server

_local: dict[tuple[str, str, str], Server] = {}


def exported() -> bool:
    """Whether anything is exported in this process (a cheap guard for the call path)."""
    return bool(_local)


def publish(key: tuple[str, str, str], server: Server) -> None:
    _local.setdefault(key, server)


def withdraw(key: tuple[str, str, str], server: Server) -> None:
    if _local.get(key) is server:
        del _local[key]


def find(service: str, version: str, group: str) -> Server | None:
    server = _local.get((service, version, group))
    if server is None and version in ("", "*"):
        for (name, _, grp), candidate in _local.items():
            if name == service and grp == group:
                return candidate
    return server
