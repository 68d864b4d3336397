"""Interceptors every client or server created afterwards starts with.

This is how ``instrument.auto`` adds tracing to services it did not build: it
registers here once, and each new chain places these outermost.
"""

from __future__ import annotations

from typing import Literal

from ._invocation import Interceptor

Side = Literal["client", "server"]

_global: dict[str, list[Interceptor]] = {"client": [], "server": []}


def add_global_interceptor(interceptor: Interceptor, *, side: Side) -> None:
    """Put ``interceptor`` at the head of the chain of every later client or server."""
    if side not in _global:
        raise ValueError(f"side must be 'client' or 'server', not {side!r}")
    if interceptor not in _global[side]:
        _global[side].append(interceptor)


def remove_global_interceptor(interceptor: Interceptor, *, side: Side) -> None:
    if interceptor in _global[side]:
        _global[side].remove(interceptor)


def global_interceptors(side: Side) -> list[Interceptor]:
    return list(_global[side])
