"""Connection control on the provider: a cap on links in total and per client address.

Judged when a link opens, before it may send anything: a link beyond a cap is told
why (an ``refused`` event carrying the message and the code ``RESOURCE_EXHAUSTED``)
and closed; the links already open are not touched. The consumer takes a refused
link as a provider to avoid for a while (see ``rpc._channel``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter

__all__ = ["ConnectionLimits"]

log = logging.getLogger("callscope.rpc")


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
    return value


class ConnectionLimits:
    """Counts a provider's open links; :meth:`admit` says whether one more may stay."""

    def __init__(self, max_total: int = 10_000, max_per_address: int = 1_000) -> None:
        self.max_total = _positive("max_connections", max_total)
        self.max_per_address = _positive("max_connections_per_address", max_per_address)
        self.total = 0
        self.refused = 0
        self._by_address: Counter[str] = Counter()
        self._logged_at = 0.0

    def admit(self, address: str) -> str | None:
        """Count a new link from ``address`` (a host); ``None`` if admitted, else why not."""
        if self.total >= self.max_total:
            return self._refuse(
                address, f"the provider has {self.total} connections (limit {self.max_total})"
            )
        held = self._by_address[address]
        if held >= self.max_per_address:
            return self._refuse(
                address,
                f"{address} already has {held} connections"
                f" (limit {self.max_per_address} per address)",
            )
        self.total += 1
        self._by_address[address] = held + 1
        return None

    def release(self, address: str) -> None:
        """An admitted link from ``address`` closed."""
        self.total -= 1
        left = self._by_address[address] - 1
        if left > 0:
            self._by_address[address] = left
        else:
            del self._by_address[address]

    def configure(self, max_total: int | None = None, max_per_address: int | None = None) -> None:
        """New caps, live; links already open stay (they are counted, and refuse the next)."""
        if max_total is not None:
            self.max_total = _positive("max_connections", max_total)
        if max_per_address is not None:
            self.max_per_address = _positive("max_connections_per_address", max_per_address)

    def _refuse(self, address: str, reason: str) -> str:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= 1.0:  # a flood of refusals logs once a second
            self._logged_at = now
            log.warning(
                "callscope: refused a connection from %s: %s (%d refused so far)",
                address,
                reason,
                self.refused,
            )
        return reason
