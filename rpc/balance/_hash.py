"""Consistent hashing: the same arguments go to the same provider while it is listed.

Each provider has ``virtual_nodes`` points on a ring of 64-bit hashes (MD5, as Dubbo's
Ketama ring); a call's key -- the positional arguments named by ``hash_arguments`` --
goes to the first point at or after its own hash. When one of N providers leaves,
only the keys it held move (about 1/N of them).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

from .._directory import Provider
from .._invocation import Invocation
from ..config import Settings

__all__ = ["ConsistentHashBalancer"]


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode(), usedforsecurity=False).digest()[:8], "big")


class ConsistentHashBalancer:
    """A ring per provider list (rebuilt when the list changes)."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        self.arguments = settings.hash_arguments
        self.virtual_nodes = settings.virtual_nodes
        self._ring: tuple[Sequence[Provider], list[int], list[Provider]] | None = None

    def key(self, invocation: Invocation) -> str:
        args = invocation.args
        return "|".join(str(args[i]) if i < len(args) else "" for i in self.arguments)

    def select(self, providers: Sequence[Provider], invocation: Invocation) -> Provider:
        ring = self._ring
        if ring is None or ring[0] is not providers:
            ring = self._ring = self._build(providers)
        _, points, owners = ring
        index = bisect.bisect_left(points, _hash(self.key(invocation)))
        return owners[index % len(owners)]

    def _build(
        self, providers: Sequence[Provider]
    ) -> tuple[Sequence[Provider], list[int], list[Provider]]:
        placed = sorted(
            (_hash(f"{p.address}#{i}"), p.address, p)
            for p in providers
            for i in range(self.virtual_nodes)
        )
        return providers, [point for point, _, _ in placed], [p for _, _, p in placed]
