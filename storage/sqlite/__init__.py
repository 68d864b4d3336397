"""The embedded backend: ``sqlite://PATH`` (WAL; ``sqlite://:memory:`` for a throwaway)."""

from __future__ import annotations

from .._backends import StoreUrl
from ._analytics import SqliteAnalyticsTable
from ._connection import database_path
from ._spans import SqliteSpanStore

__all__ = ["SqliteAnalyticsTable", "SqliteSpanStore", "open_analytics", "open_spans"]


def open_spans(url: StoreUrl) -> SqliteSpanStore:
    return SqliteSpanStore(database_path(url.location), url.url, read_only=url.read_only)


def open_analytics(url: StoreUrl) -> SqliteAnalyticsTable:
    return SqliteAnalyticsTable(database_path(url.location), url.url, read_only=url.read_only)
