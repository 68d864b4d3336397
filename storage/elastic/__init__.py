"""The Elasticsearch backend: ``elasticsearch://HOST:PORT?prefix=callscope&shards=1&replicas=0``.

Options: ``prefix`` (index names), ``shards``/``replicas``/``refresh_interval`` (the span
index template), ``scheme`` (``http``/``https``), ``timeout_s``, ``retries``.
"""

from __future__ import annotations

from .._backends import StoreUrl
from ._analytics import ElasticAnalyticsTable
from ._spans import ElasticSpanStore

__all__ = ["ElasticAnalyticsTable", "ElasticSpanStore", "open_analytics", "open_spans"]


def open_spans(url: StoreUrl) -> ElasticSpanStore:
    return ElasticSpanStore(url)


def open_analytics(url: StoreUrl) -> ElasticAnalyticsTable:
    return ElasticAnalyticsTable(url)
