"""Governance decisions counted per (service, provider, method): the consumer KPIs' share.

A decision is counted when it lands on an attempt (its CLIENT span), under the key of
that attempt's consumer KPI sample, so the KPI recorder (``instrument``) can add the
counts to the sample of the same key when it closes a window. Counts whose key has no
sample in a window wait for the next one; the table is bounded (the oldest key goes).
Decisions are rare next to calls: one lock per decision, none per call.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._invocation import Invocation

__all__ = ["DECISIONS", "DecisionTally", "land_pending"]

TallyKey = tuple[str, str, str]  # service, provider ("host:port" or "injvm"), method


class DecisionTally:
    """Thread-safe counts of decisions by key; :meth:`take` drains the keys asked for."""

    def __init__(self, max_keys: int = 10_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys}")
        self.max_keys = max_keys
        self._counts: dict[TallyKey, dict[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, service: str, peer: str, method: str, decision: str) -> None:
        key = (service, peer, method)
        with self._lock:
            counts = self._counts.get(key)
            if counts is None:
                if len(self._counts) >= self.max_keys:  # nobody collects: forget the oldest
                    del self._counts[next(iter(self._counts))]
                counts = self._counts[key] = {}
            counts[decision] = counts.get(decision, 0) + 1

    def take(self, keys: Collection[TallyKey]) -> dict[TallyKey, dict[str, int]]:
        """The counts of those of ``keys`` that have some, removed from the table."""
        if not self._counts:
            return {}
        with self._lock:
            return {k: self._counts.pop(k) for k in keys if k in self._counts}


DECISIONS = DecisionTally()


def land_pending(inv: Invocation) -> None:
    """Inside an attempt (its span open): the decisions taken before it become its events."""
    pending = inv.pending_events
    if pending is not None:
        inv.pending_events = None
        for name, attributes in pending:
            inv.add_event(name, **attributes)
            DECISIONS.add(inv.service, inv.peer, inv.method, name)
