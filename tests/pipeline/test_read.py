"""read_spans gives the same spans, in the contract's schema, from every source."""

from __future__ import annotations

import gzip
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from callscope_contract import span_row, span_schema
from pipeline import PipelineError, read_spans
from storage import open_span_store

from .traces import generate

NOW_US = int(time.time() * 1_000_000)
HOUR_US = 3_600_000_000
SPANS = generate(60, NOW_US - HOUR_US, HOUR_US)
WINDOW = (NOW_US - HOUR_US, NOW_US)
OUTSIDE = generate(5, NOW_US + HOUR_US, HOUR_US, seed=99)  # after the window


def keys_and_rows(frame: Any) -> dict[tuple[str, str], tuple]:
    assert frame.schema == span_schema()
    return {(r.trace_id, r.span_id): tuple(r) for r in frame.collect()}


def expected() -> dict[tuple[str, str], tuple]:
    return {(s.trace_id, s.span_id): span_row(s) for s in SPANS}


@pytest.mark.parametrize("backend", ["sqlite", "elasticsearch", "hbase"])
def test_a_span_store(spark: Any, backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'spans.db'}"
    elif backend == "elasticsearch":
        host = request.getfixturevalue("elasticsearch_url").split("://")[-1]
        url = f"elasticsearch://{host}?prefix=pipe{uuid.uuid4().hex[:8]}"
    else:
        url = f"hbase://{request.getfixturevalue('hbase_thrift')}?prefix=pipe{uuid.uuid4().hex[:8]}"
    store = open_span_store(url)
    try:
        store.write_spans(SPANS + OUTSIDE)
        store.refresh()
        assert keys_and_rows(read_spans(spark, url, *WINDOW, partitions=3)) == expected()
    finally:
        getattr(store, "drop", store.clear)()
        store.close()


def test_json_lines_archive_files(spark: Any, tmp_path: Path) -> None:
    lines = [s.to_json() for s in SPANS + OUTSIDE]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines[:100]) + b"\n{not json\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wb") as out:
        out.write(b"\n".join(lines[100:] + lines[:10]))  # redelivered lines count once
    got = keys_and_rows(read_spans(spark, f"file://{tmp_path}", *WINDOW))
    assert got.keys() == expected().keys()
    some = SPANS[3]
    assert got[(some.trace_id, some.span_id)] == span_row(some)


def test_only_the_columns_asked_for(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(s.to_json() for s in SPANS + SPANS[:5]))
    got = read_spans(spark, f"file://{tmp_path}", *WINDOW, columns=["kind", "span_id", "trace_id"])
    assert got.columns == ["trace_id", "span_id", "kind"]  # the contract's order
    assert sorted(map(tuple, got.collect())) == sorted(
        (s.trace_id, s.span_id, s.kind) for s in SPANS
    )
    with pytest.raises(PipelineError) as caught:
        read_spans(spark, f"file://{tmp_path}", *WINDOW, columns=["kind", "nosuch"])
    assert caught.value.code == "BAD_OPTION"


def test_a_kafka_topic_within_the_window(spark: Any, kafka_bootstrap: str) -> None:
    topic = f"callscope.spans.pipeline-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for s in SPANS + OUTSIDE:
        producer.send(topic, s.to_json(), key=s.trace_id.encode())
    producer.send(topic, b"{not json", key=b"x")
    producer.send(topic, SPANS[0].to_json(), key=SPANS[0].trace_id.encode())  # a redelivery
    producer.flush(30)
    producer.close()
    got = read_spans(spark, f"kafka://{kafka_bootstrap}/{topic}", *WINDOW)
    assert keys_and_rows(got).keys() == expected().keys()


@pytest.mark.parametrize(
    ("source", "start", "end", "code"),
    [
        ("callscope.db", 0, 1, "BAD_SOURCE"),
        ("nosuch://x", 0, 1, "BAD_SOURCE"),
        ("file:///tmp", 5, 5, "BAD_WINDOW"),
        ("file:///tmp", float("nan"), 5, "BAD_WINDOW"),
        ("file:///tmp", -1, 5, "BAD_WINDOW"),
    ],
)
def test_bad_sources_and_windows_are_refused_with_a_code(
    spark: Any, source: str, start: float, end: float, code: str
) -> None:
    with pytest.raises(PipelineError) as caught:
        read_spans(spark, source, start, end)
    assert caught.value.code == code
