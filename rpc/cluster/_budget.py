"""The retry budget: a token bucket that stops retry storms (gRPC's retry throttling).

Every failed attempt takes one token, every success gives back ``ratio``; retries
are allowed only while more than half of ``capacity`` remains. Under a full outage a
consumer therefore sends about ``capacity / 2`` retries in all, then only first
attempts, until successes refill the bucket.
"""

from __future__ import annotations

import threading

__all__ = ["RetryBudget"]


class RetryBudget:
    """One bucket per consumer and service."""

    def __init__(self, capacity: float = 100.0, ratio: float = 0.1) -> None:
        if not capacity > 0 or not ratio > 0:
            raise ValueError("a retry budget needs a positive capacity and ratio")
        self.capacity = capacity
        self.ratio = ratio
        self.tokens = capacity
        self._lock = threading.Lock()

    def succeeded(self) -> None:
        if self.tokens < self.capacity:
            with self._lock:
                self.tokens = min(self.capacity, self.tokens + self.ratio)

    def failed(self) -> bool:
        """Take a token for a failed attempt; may the call be retried?"""
        with self._lock:
            self.tokens = max(0.0, self.tokens - 1)
            return self.tokens > self.capacity / 2

    def __repr__(self) -> str:
        return f"RetryBudget({self.tokens:.1f}/{self.capacity:g})"
