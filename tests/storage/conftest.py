"""One store per backend for the conformance suite (Jaeger's ``integration.RunAll`` style).

Each backend gets a store in its own namespace (a fresh SQLite file, an Elasticsearch
index prefix, an HBase table prefix) for the module, cleared before every test and dropped
at the end; the real services come from ``tests/conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import AnalyticsStore, SpanStore, open_analytics_store, open_span_store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("elasticsearch", id="elasticsearch", marks=pytest.mark.elasticsearch),
    pytest.param("hbase", id="hbase", marks=pytest.mark.hbase),
]


def backend_url(name: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    tag = uuid.uuid4().hex[:8]
    if name == "sqlite":
        return f"sqlite://{tmp / 'store.db'}"
    if name == "elasticsearch":
        url = request.getfixturevalue("elasticsearch_url").split("://", 1)[-1]
        return f"elasticsearch://{url}?prefix=cstest-{tag}"
    return f"hbase://{request.getfixturevalue('hbase_thrift')}?prefix=cstest_{tag}&salt=4"


@pytest.fixture(scope="module", params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return backend_url(request.param, request, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def _span_store(store_url: str) -> Iterator[SpanStore]:
    store = open_span_store(store_url)
    yield store
    drop = getattr(store, "drop", None)
    if drop:
        drop()
    store.close()


@pytest.fixture
def span_store(_span_store: SpanStore) -> SpanStore:
    _span_store.clear()
    return _span_store


@pytest.fixture(scope="module")
def _analytics(store_url: str) -> Iterator[AnalyticsStore]:
    store = open_analytics_store(store_url)
    yield store
    drop = getattr(store.table, "drop", None)
    if drop:
        drop()
    store.close()


@pytest.fixture
def analytics(_analytics: AnalyticsStore) -> AnalyticsStore:
    _analytics.clear()
    return _analytics
