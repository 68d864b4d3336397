"""An adaptive concurrency limit, gradient style (Netflix concurrency-limits' Gradient2).

The limit of one service's bulkhead follows its latency: while recent calls take
no longer than the long-run average (times ``tolerance``), the limit grows by
about its square root per update; when they take longer, queueing has started
somewhere, and the limit shrinks in proportion (at most by half per update).
Updates are smoothed and happen at most every ``update_every`` seconds, and not
while the service uses less than half its limit (no growth without demand).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._invocation import CallNext, Invocation

if TYPE_CHECKING:
    from .._server import Server

__all__ = ["GradientLimit"]


class GradientLimit:
    """A server interceptor that adapts ``service``'s ``max_concurrent``; see :meth:`attach`."""

    def __init__(
        self,
        service: str,
        *,
        initial: int = 20,
        min_limit: int = 1,
        max_limit: int = 1000,
        smoothing: float = 0.2,
        tolerance: float = 1.5,
        long_window: int = 60,
        update_every: float = 0.5,
    ) -> None:
        if not 1 <= min_limit <= initial <= max_limit:
            raise ValueError("limits must satisfy 1 <= min_limit <= initial <= max_limit")
        if not 0 < smoothing <= 1 or not tolerance >= 1 or long_window < 1 or update_every <= 0:
            raise ValueError(
                "smoothing in (0, 1], tolerance >= 1, long_window >= 1, update_every > 0"
            )
        self.service = service
        self.limit = float(initial)
        self.min_limit, self.max_limit = min_limit, max_limit
        self.smoothing, self.tolerance = smoothing, tolerance
        self.long_window, self.update_every = long_window, update_every
        self.long_rtt = 0.0
        self.updates = 0
        self._sum = 0.0
        self._count = 0
        self._last = time.perf_counter()
        self._server: Server | None = None

    def attach(self, server: Server) -> GradientLimit:
        """Adapt ``service``'s limit on ``server``, starting from ``initial``."""
        self._server = server
        server.add_interceptor(self)
        self._apply()
        return self

    async def __call__(self, inv: Invocation, call_next: CallNext) -> Any:
        if inv.service != self.service:
            return await call_next(inv)
        start = time.perf_counter()
        try:
            return await call_next(inv)
        finally:
            self.observe(time.perf_counter() - start)

    def observe(self, rtt: float, inflight: int | None = None) -> None:
        """One call's latency (s); updates the limit when ``update_every`` has passed."""
        self._sum += rtt
        self._count += 1
        now = time.perf_counter()
        if now - self._last >= self.update_every:
            self._last = now
            self.update(inflight)

    def update(self, inflight: int | None = None) -> float:
        """Fold the latencies seen since the last update into the limit; returns it."""
        if not self._count:
            return self.limit
        short = self._sum / self._count
        self._sum, self._count = 0.0, 0
        self.updates += 1
        if self.long_rtt == 0.0:
            self.long_rtt = short
        else:  # an average over about long_window updates
            weight = 1 / min(self.updates, self.long_window)
            self.long_rtt += (short - self.long_rtt) * weight
            if self.long_rtt / short > 2:  # latency fell for good: forget the old level faster
                self.long_rtt *= 0.95
        if inflight is None and self._server is not None:
            head = self._server.concurrency.bulkheads.get(self.service)
            inflight = head.running + head.queued if head is not None else 0
        if inflight is not None and inflight < self.limit / 2:
            return self.limit  # the service is not using its limit: no evidence to grow on
        gradient = max(0.5, min(1.0, self.tolerance * self.long_rtt / short))
        target = self.limit * gradient + math.sqrt(self.limit)
        limit = self.limit * (1 - self.smoothing) + target * self.smoothing
        self.limit = max(float(self.min_limit), min(float(self.max_limit), limit))
        self._apply()
        return self.limit

    def _apply(self) -> None:
        server = self._server
        if server is None:
            return
        head = server.concurrency.bulkhead(self.service)
        server.limit(self.service, replace(head.limit, max_concurrent=int(self.limit)))
