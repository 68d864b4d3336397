"""Where the pages read from: the span store (and later the analytics store and registry),
opened read-only (the dashboard creates nothing) once per process on first use, and tried
again on the next read when opening failed.

A backend that is down becomes :class:`Unavailable`, which every page shows as a sentence
with its code instead of a traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from storage import (
    AnalyticsStore,
    SpanStore,
    StorageError,
    open_analytics_store,
    open_span_store,
)

__all__ = ["Sources", "Unavailable"]

T = TypeVar("T")


class Unavailable(Exception):
    """A read failed for a reason a person can act on; ``str()`` is the sentence to show."""

    def __init__(self, what: str, url: str, err: BaseException) -> None:
        code = getattr(err, "code", "UNAVAILABLE")
        super().__init__(f"{what} at {url} cannot be read ({code}): {err}")
        self.code = code


class Sources:
    """The stores a dashboard process reads, by URL; safe to share across request threads."""

    def __init__(
        self, store_url: str, registry_url: str | None = None, analytics_url: str | None = None
    ) -> None:
        self.store_url = store_url
        self.analytics_url = analytics_url or store_url
        self.registry_url = registry_url
        self._lock = threading.Lock()
        self._spans: SpanStore | None = None
        self._analytics: AnalyticsStore | None = None

    def spans(self, read: Callable[[SpanStore], T]) -> T:
        """``read(store)``, with the store's failures (and a store that will not open) as
        :class:`Unavailable`."""
        try:
            return read(self._span_store())
        except (StorageError, OSError) as err:
            raise Unavailable("the span store", self.store_url, err) from err

    def _span_store(self) -> SpanStore:
        with self._lock:
            if self._spans is None:
                self._spans = open_span_store(self.store_url, read_only=True)
            return self._spans

    def analytics(self, read: Callable[[AnalyticsStore], T]) -> T:
        """``read(analytics store)``: KPI samples, dependency edges, top callers, weights."""
        try:
            return read(self._analytics_store())
        except (StorageError, OSError) as err:
            raise Unavailable("the analytics store", self.analytics_url, err) from err

    def _analytics_store(self) -> AnalyticsStore:
        with self._lock:
            if self._analytics is None:
                self._analytics = open_analytics_store(self.analytics_url, read_only=True)
            return self._analytics

    def close(self) -> None:
        with self._lock:
            for store in (self._spans, self._analytics):
                if store is not None:
                    store.close()
            self._spans = self._analytics = None
