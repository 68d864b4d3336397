"""The streaming job's dependency edges over real Kafka equal the batch job's over the same
spans (and the plain-Python truth), at service, instance and method level -- including a
call whose SERVER span starts in the window after its CLIENT span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callscope_contract import SpanRecord
from pipeline import run_batch, run_stream
from storage import open_analytics_store

from .test_stream import new_topic, send
from .traces import TRUE_EDGES, W_US, generate, group, plain_calls

WINDOW_S = W_US // 1_000_000
BASE = 1_764_150_000_000_000 - 1_764_150_000_000_000 % W_US
ACROSS = [  # orders calls billing 5 µs before the window ends; billing starts in the next
    SpanRecord(trace_id="ab" * 16, span_id="c1" * 8, parent_span_id="", name="billing.Api/handle",
               kind="CLIENT", service="orders", instance="10.0.0.1:7000", peer_service="billing",
               start_us=BASE + W_US - 5, duration_us=900),
    SpanRecord(trace_id="ab" * 16, span_id="d1" * 8, parent_span_id="c1" * 8,
               name="billing.Api/handle", kind="SERVER", service="billing",
               instance="10.0.0.3:7000", start_us=BASE + W_US + 5, duration_us=700),
]  # fmt: skip
SPANS = generate(120, BASE + 5_000_000, 2 * W_US - 10_000_000, seed=11) + ACROSS
CLOSER = SpanRecord(trace_id="ef" * 16, span_id="e1" * 8, name="late.Api/x", kind="SERVER",
                    service="late", instance="10.0.0.9:1", start_us=BASE + 3 * W_US + 20_000_000,
                    duration_us=1)  # fmt: skip
"""Moves the watermark past the two windows (its own window stays open)."""
LEVEL_KEY = {
    "service": lambda e: (e.caller, e.callee),
    "instance": lambda e: (e.caller, e.callee, e.caller_instance, e.callee_instance),
    "method": lambda e: (e.caller, e.callee, e.method),
}


def keyed(edges: Any, level: str) -> dict[tuple, tuple]:
    return {(e.window_start_us, *LEVEL_KEY[level](e)): (e.calls, e.errors, e.p50_ms, e.p95_ms,
            e.p99_ms) for e in edges if e.level == level}  # fmt: skip


def test_streaming_edges_equal_the_batch_job_s(
    spark: Any, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = new_topic(kafka_bootstrap, "edges")
    send(kafka_bootstrap, topic, [*SPANS, CLOSER])
    store = f"sqlite://{tmp_path / 'analytics.db'}"
    query = run_stream(spark, f"kafka://{kafka_bootstrap}/{topic}", str(tmp_path / "checkpoint"),
                       stores=[store], window_s=WINDOW_S, watermark_s=5,
                       available_now=True)  # fmt: skip
    assert query.awaitTermination(300), "the stream did not drain the topic"
    assert query.exception() is None
    (tmp_path / "spans").mkdir()
    (tmp_path / "spans" / "spans.jsonl").write_bytes(b"\n".join(s.to_json() for s in SPANS))
    batch = run_batch(spark, f"file://{tmp_path / 'spans'}", BASE, BASE + 2 * W_US,
                      window_s=WINDOW_S)  # fmt: skip
    with open_analytics_store(store) as analytics:
        streamed = {level: analytics.dependencies(BASE, BASE + 4 * W_US, level=level)
                    for level in LEVEL_KEY}  # fmt: skip
    for level in LEVEL_KEY:
        assert keyed(streamed[level], level) == keyed(batch.edges, level), level
        truth = group(plain_calls(SPANS), level)
        counts = {k: v[:2] for k, v in keyed(streamed[level], level).items()}
        assert counts == {k: (len(v), sum(c[7] for c in v)) for k, v in truth.items()}, level
    service = {(e.caller, e.callee) for e in streamed["service"]}
    assert service == TRUE_EDGES
    across = [e for e in streamed["instance"] if e.callee_instance == "10.0.0.3:7000"
              and e.window_start_us == BASE and e.caller_instance == "10.0.0.1:7000"]  # fmt: skip
    assert across and all(e.callee == "billing" for e in across)
