"""Elasticsearch smoke test: a document indexed with the official client is found by a search."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.elasticsearch


def test_index_and_search(elasticsearch_url: str) -> None:
    from elasticsearch import Elasticsearch

    index = f"callscope-test-{uuid.uuid4().hex[:8]}"
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    try:
        # Not client.info(): GET / lives in the rest-root module, which the integration-test
        # distribution lacks (see README, "The real stack").
        versions = {n["version"] for n in client.nodes.info()["nodes"].values()}
        assert all(v.startswith("8.") for v in versions), versions
        doc = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "name": "orders.OrderService/create"}
        client.index(index=index, id="span-1", document=doc, refresh="wait_for")
        hits = client.search(index=index, query={"term": {"trace_id": doc["trace_id"]}})["hits"]
        assert hits["total"]["value"] == 1
        assert hits["hits"][0]["_source"] == doc
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()
