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
from urllib.parse import urlsplit, urlunsplit

from rpc import RpcError
from rpc.registry import Registry, connect
from storage import (
    AnalyticsStore,
    SpanStore,
    StorageError,
    open_analytics_store,
    open_span_store,
)

__all__ = ["Sources", "Unavailable", "shown_url"]

T = TypeVar("T")


class Unavailable(Exception):
    """A read failed for a reason a person can act on; ``str()`` is the sentence to show."""

    def __init__(self, what: str, url: str, err: BaseException, doing: str = "read") -> None:
        code = str(getattr(err, "code", "UNAVAILABLE"))
        super().__init__(f"{what} at {url} cannot be {doing} ({code}): {err}")
        self.code = code


def shown_url(url: str) -> str:
    """``url`` without the credential it may carry (a token or user:password)."""
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class Sources:
    """The stores a dashboard process reads, by URL; safe to share across request threads."""

    def __init__(
        self,
        store_url: str,
        registry_url: str | None = None,
        analytics_url: str | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self.store_url = store_url
        self.analytics_url = analytics_url or store_url
        self.registry_url = registry_url
        self.read_only = read_only
        self._lock = threading.Lock()
        self._spans: SpanStore | None = None
        self._analytics: AnalyticsStore | None = None
        self._registry: Registry | None = None

    @property
    def can_write(self) -> bool:
        """Whether rule edits may be sent: not read-only, and the registry URL carries a
        credential (an in-process ``memory://`` registry needs none). The dashboard never
        holds a credential it was not given."""
        if self.read_only or not self.registry_url:
            return False
        parts = urlsplit(self.registry_url)
        return parts.scheme == "memory" or bool(parts.username)

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

    def registry(self, use: Callable[[Registry], T], *, writing: bool = False) -> T:
        """``use(registry)``; its failures (down, refused, conflicting) as
        :class:`Unavailable` with the registry's error code."""
        if not self.registry_url:
            raise Unavailable("the registry", "(none)", _NoRegistry())
        url = shown_url(self.registry_url)
        try:
            return use(self._registry_client())
        except (RpcError, ValueError, OSError) as err:
            raise Unavailable("the registry", url, err, "written" if writing else "read") from err

    def _registry_client(self) -> Registry:
        with self._lock:
            if self._registry is None:
                assert self.registry_url is not None
                self._registry = connect(self.registry_url)
            return self._registry

    def close(self) -> None:
        with self._lock:
            for store in (self._spans, self._analytics, self._registry):
                if store is not None:
                    store.close()
            self._spans = self._analytics = self._registry = None


class _NoRegistry(Exception):
    code = "NOT_CONFIGURED"

    def __str__(self) -> str:
        return "start the dashboard with --registry URL to see and edit governance"
