"""calls(): the pairing rules on hand-made spans, corner cases the generated traces lack."""

from __future__ import annotations

from typing import Any

from callscope_contract import SpanRecord, span_row, span_schema
from pipeline import calls

T = "ab" * 16


def span(span_id: str, kind: str, service: str, parent: str = "", **more: Any) -> SpanRecord:
    more.setdefault("instance", f"{service}:1")
    return SpanRecord(
        trace_id=T, span_id=span_id * 16, parent_span_id=parent and parent * 16, kind=kind,
        name=f"{service}.Api/x", service=service, start_us=10, duration_us=5, **more,
    )  # fmt: skip


def test_pairing_rules(spark: Any) -> None:
    spans = [
        span("1", "SERVER", "a"),
        span("2", "CLIENT", "a", "1", peer_service="b", peer_instance="b:9"),
        span("3", "SERVER", "b", "2", peer_service="a"),  # a client parent: no second call
        span("4", "SERVER", "b", "2", instance=""),  # a second SERVER child: still one call
        span("5", "CLIENT", "b", "3", peer_service="db", peer_instance="db:1", status="ERROR"),
        span("7", "SERVER", "d", "1", peer_service="x", peer_instance="x:1"),  # parent a SERVER
        span("8", "SERVER", "e", "", peer_service="cron"),  # a root named by its caller
        span("9", "INTERNAL", "a", "1", peer_service="z"),
    ]
    frame = spark.createDataFrame([span_row(s) for s in spans], span_schema())
    got = sorted((*tuple(r)[:5], r.error) for r in calls(frame).collect())
    assert len(got) == 4
    assert got[0][:2] == ("a", "a:1") and got[0][2] == "b" and got[0][3] in ("b:1", "")
    assert got[1:] == [
        ("b", "b:1", "db", "db:1", "b.Api/x", True),
        ("cron", "", "e", "e:1", "e.Api/x", False),
        ("x", "x:1", "d", "d:1", "d.Api/x", False),
    ]
