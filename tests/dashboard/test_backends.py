"""The trace pages over the real Elasticsearch and HBase stores: the same search by tag,
waterfall and comparison as on SQLite (the dashboard reads only storage's public API)."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator

import pytest
from dash import Dash

from dashboard import Sources
from dashboard.pages import compare, trace, traces
from storage import open_span_store
from tests.dashboard.seed import make_trace


@pytest.fixture(params=["elasticsearch", "hbase"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    tag = uuid.uuid4().hex[:8]
    if request.param == "elasticsearch":
        host = request.getfixturevalue("elasticsearch_url").split("://", 1)[1]
        url = f"elasticsearch://{host}?prefix=csdash-{tag}"
    else:
        url = f"hbase://{request.getfixturevalue('hbase_thrift')}?prefix=csdash_{tag}"
    store = open_span_store(url)
    yield url
    store.clear()
    store.close()


def test_search_waterfall_and_compare_on_a_real_backend(store_url: str) -> None:
    rng = random.Random(5)
    now_us = int(time.time() * 1e6)
    made = [make_trace(rng, now_us - (i + 1) * 10_000_000, 6, attributes={"customer": f"c{i}"})
            for i in range(5)]  # fmt: skip
    with open_span_store(store_url) as store:
        store.write_spans([s for t in made for s in t])
        store.refresh()
    sources = Sources(store_url)
    app = Dash(__name__)
    search, show, diff = (traces.register(app, sources), trace.register(app, sources),
                          compare.register(app, sources))  # fmt: skip
    try:
        _, rows, message, *_ = search.run_search("?service=gateway&tags=customer%3Dc3&lookback=1h")
        assert [r["trace_id"] for r in rows] == [made[3][0].trace_id] and message == ""
        figure, *_ = show.render(made[3][0].trace_id, [], "")
        assert sum(len(t["y"]) for t in figure["data"] if t["type"] == "bar") == 6
        text = json.dumps(diff.show({"a": made[0][0].trace_id, "b": made[1][0].trace_id}),
                          default=lambda c: c.to_plotly_json())  # fmt: skip
        assert "operation paths differ" in text
    finally:
        sources.close()
