"""``trace_results`` on Spark gives, for traces spread over partitions in any order and with
null optional fields, exactly what the trace-level rules give trace by trace."""

from __future__ import annotations

import random
from typing import Any

from callscope_contract import SPAN_COLUMNS, SpanRecord, span_row, span_schema
from pipeline._paths import trace_results

from .test_trace_facts import call, facts, paths, shares, span
from .traces import W_US, generate


def edge_traces() -> list[SpanRecord]:
    """One trace each: entered from an uninstrumented caller, a duplicate SERVER span, a
    parent loop, an ancestry deeper than the limit."""
    out: list[SpanRecord] = []
    for n, shape in enumerate(("outside", "duplicate", "loop", "deep")):
        top = span("SERVER", "billing", W_US - 50, 5000, trace_id=f"{n + 1:032x}",
                   peer_service="cron")  # fmt: skip
        spans = [top]
        for depth in range(45 if shape == "deep" else 1):
            spans += call(spans[-1], f"s{depth}", W_US + 10 * depth, 4000 - depth)
        if shape == "duplicate":
            spans.append(span("SERVER", "s0-b", W_US + 3, 9000, spans[1].span_id,
                              trace_id=top.trace_id))  # fmt: skip
        if shape == "loop":
            top.parent_span_id = spans[-1].span_id
        spans.append(span("CLIENT", spans[-1].service, W_US + 900, 10, spans[-1].span_id,
                          peer_service="db", trace_id=top.trace_id))  # fmt: skip
        out += spans
    rng = random.Random(9)  # span ids out of start order, so only the job's sort puts them so
    new_id = {s.span_id: f"{rng.getrandbits(64) | 1:016x}" for s in out}
    for s in out:
        s.span_id, s.parent_span_id = new_id[s.span_id], new_id.get(s.parent_span_id, "")
    return out


def test_the_job_reads_every_trace_as_the_rules_do(spark: Any) -> None:
    spans = edge_traces() + generate(80, 5_000_000, 2 * W_US, seed=3)
    rows = [span_row(s) for s in spans]
    random.Random(5).shuffle(rows)  # the shuffle's order must not matter
    at = SPAN_COLUMNS.index("peer_service")
    rows = [(*r[:at], None, *r[at + 1 :]) if not r[at] else r for r in rows]  # nulls, as read
    frame = spark.createDataFrame(rows, span_schema()).repartition(3)
    got_paths, got_shares = trace_results(frame, W_US // 1_000_000)
    totals = facts(spans)
    assert {(p.window_start_us, p.services): [p.calls, p.errors] for p in got_paths} == paths(
        totals
    )
    expected = shares(totals)
    assert {(s.window_start_us, s.service) for s in got_shares} == {k for k in expected if k[1]}
    for s in got_shares:
        micros, traces = expected[(s.window_start_us, s.service)]
        assert (s.critical_ms, s.traces) == (round(micros / 1000, 3), traces)
        assert s.window_traces == expected[(s.window_start_us, "")][1]
    assert any(len(p.services) > 20 for p in got_paths)  # the deep trace was read
