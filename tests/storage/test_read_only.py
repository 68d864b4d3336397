"""Stores opened read-only (as ``callscope trace``, ``traces`` and ``kpis`` open them), on
every backend against the real thing: nothing is created, and what a writer stored reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from instrument.model import KpiSample
from storage import NoStore, open_analytics_store, open_span_store, parse_url

from .conftest import BACKENDS, backend_url
from .spans import BASE_US, span, trace_id


def _footprint(backend: str, url: str, request: pytest.FixtureRequest, tmp: Path) -> list[Any]:
    """What exists of the store ``url`` names: files, indices and templates, tables."""
    prefix = parse_url(url).option("prefix", "")
    if backend == "sqlite":
        return sorted(tmp.rglob("*"))
    if backend == "elasticsearch":
        from elasticsearch import Elasticsearch

        with Elasticsearch(request.getfixturevalue("elasticsearch_url")) as es:
            indices = list(es.indices.get(index=f"{prefix}*", expand_wildcards="all"))
            templates = es.indices.exists_index_template(name=f"{prefix}*")
            return indices + (["template"] if templates else [])
    import happybase

    host, port = request.getfixturevalue("hbase_thrift").split(":")
    conn = happybase.Connection(host, int(port), table_prefix=prefix)
    try:
        return sorted(conn.tables())
    finally:
        conn.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_opened_to_read_is_never_created(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = backend_url(backend, request, tmp_path / "a" / "typo")
    for open_store in (open_span_store, open_analytics_store):
        with pytest.raises(NoStore, match=r"^no store at ") as caught:
            open_store(url, read_only=True)  # type: ignore[operator]
        assert caught.value.code == "NOT_FOUND" and "\n" not in str(caught.value)
    assert _footprint(backend, url, request, tmp_path) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_store_opened_to_read_reads_what_a_writer_stored(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = backend_url(backend, request, tmp_path)
    t = trace_id()
    sample = KpiSample(service="orders", instance="10.0.0.7:7001", method="create",
                       role="provider", window_start_us=BASE_US, window_s=10.0,
                       count=3)  # fmt: skip
    spans, analytics = open_span_store(url), open_analytics_store(url)
    try:
        spans.write_spans([span(t)])
        spans.refresh()
        analytics.write_kpis([sample])
        analytics.refresh()
        with open_span_store(url, read_only=True) as reader:
            trace = reader.get_trace(t)
            assert trace is not None and len(trace.spans) == 1
        with open_analytics_store(url, read_only=True) as reading:
            assert reading.kpis("orders", BASE_US, BASE_US + 1) == [sample]
    finally:
        for drop in (getattr(spans, "drop", None), getattr(analytics.table, "drop", None)):
            if drop:
                drop()
        spans.close()
        analytics.close()
