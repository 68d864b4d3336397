"""Queries and URLs that a caller must fix fail with BAD_REQUEST, before any backend is hit."""

from __future__ import annotations

import pytest

import storage
from storage import BadQuery, TraceQuery, open_span_store, parse_url


def test_a_query_needs_a_service_and_a_sane_limit() -> None:
    with pytest.raises(BadQuery, match="service"):
        TraceQuery("")
    with pytest.raises(BadQuery, match="limit"):
        TraceQuery("orders", limit=0)
    with pytest.raises(BadQuery, match="min_duration_us"):
        TraceQuery("orders", min_duration_us=-1)


def test_tag_filters_parse_from_key_value_text() -> None:
    assert TraceQuery.parse_tags(["zone=a", "http.url=x=y"]) == {"zone": "a", "http.url": "x=y"}
    with pytest.raises(BadQuery, match="key=value"):
        TraceQuery.parse_tags(["zone"])


def test_store_urls() -> None:
    url = parse_url("hbase://10.0.0.1:9091?prefix=cs&salt=8")
    assert url.host_port(9090) == ("10.0.0.1", 9091)
    assert url.int_option("salt", 16) == 8 and url.option("prefix", "x") == "cs"
    assert parse_url("sqlite:///tmp/x.db").location == "/tmp/x.db"
    with pytest.raises(BadQuery, match="no storage backend for cassandra"):
        open_span_store("cassandra://x")
    with pytest.raises(BadQuery):
        open_span_store("nothing")
    assert BadQuery("x").code == "BAD_REQUEST" and storage.StorageUnavailable("x").retriable


def test_the_public_api_is_listed() -> None:
    for name in storage.__all__:
        assert hasattr(storage, name), name
