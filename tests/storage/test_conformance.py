"""The storage contract (``storage/_api.py``), checked on every backend against the real thing.

Like Jaeger's ``internal/storage/integration/integration.go::RunAll``: one suite,
parametrized (``conftest.BACKENDS``) over SQLite, Elasticsearch and HBase.
"""

from __future__ import annotations

import sys

import pytest

from instrument.model import KpiSample, SpanLink
from storage import (
    AnalyticsStore,
    CallerStat,
    DependencyEdge,
    SpanStore,
    TraceQuery,
    WeightChange,
)

from .spans import BASE_US, span, trace_id

MS = 1000
S = 1_000_000


def written(store: SpanStore, spans: list) -> list:
    store.write_spans(spans)
    store.refresh()
    return spans


def test_a_written_trace_reads_back_whole(span_store: SpanStore) -> None:
    t = trace_id()
    root = span(
        t,
        service="gateway",
        name="gateway/checkout",
        duration_us=5 * MS,
        attributes={"zone": "a", "retries": 2, "vip": True, "nested": {"x": [1, 2]}},
    )
    child = span(t, parent=root.span_id, start_us=BASE_US + 100, status="ERROR")
    written(span_store, [child, root])
    trace = span_store.get_trace(t)
    assert trace is not None and trace.trace_id == t
    assert trace.spans == [root, child]  # every field, oldest first
    assert trace.root == root and trace.has_error and trace.duration_us == 5 * MS


def test_links_read_back_and_spans_without_them_stay_without(span_store: SpanStore) -> None:
    t = trace_id()
    linked = span(t)
    linked.links = [
        SpanLink(trace_id(), "00f067aa0ba902b7", "vendor=1", {"msg": 3}),
        SpanLink(t, "00f067aa0ba902b8"),
    ]
    plain = span(t, start_us=BASE_US + 5)
    written(span_store, [linked, plain])
    trace = span_store.get_trace(t)
    assert trace is not None and trace.spans == [linked, plain]
    assert trace.spans[1].links == []


def test_rewriting_the_same_spans_stores_them_once(span_store: SpanStore) -> None:
    t = trace_id()
    batch = [span(t, start_us=BASE_US + i) for i in range(5)]
    written(span_store, batch)
    written(span_store, batch[2:] + batch)  # redelivered, in another order
    assert span_store.count() == 5
    assert len(span_store.get_trace(t).spans) == 5


def test_unknown_traces_are_left_out(span_store: SpanStore) -> None:
    a, b = trace_id(), trace_id()
    written(span_store, [span(a), span(b)])
    assert span_store.get_trace(trace_id()) is None
    assert [tr.trace_id for tr in span_store.get_traces([b, trace_id(), a])] == [b, a]


def test_find_by_service_newest_first_within_the_limit(span_store: SpanStore) -> None:
    ids = [trace_id() for _ in range(8)]
    spans = [span(t, start_us=BASE_US + i * S) for i, t in enumerate(ids)]
    spans += [span(t, service="billing", start_us=BASE_US + i * S + 1) for i, t in enumerate(ids)]
    spans += [span(trace_id(), service="billing")]
    written(span_store, spans)
    assert span_store.find_trace_ids(TraceQuery("orders", limit=5)) == ids[::-1][:5]
    assert len(span_store.find_trace_ids(TraceQuery("billing", limit=100))) == 9
    assert span_store.find_trace_ids(TraceQuery("nobody")) == []


def test_a_trace_with_many_matching_spans_counts_once(span_store: SpanStore) -> None:
    t, u = trace_id(), trace_id()
    written(span_store, [span(t, start_us=BASE_US + i) for i in range(30)] + [span(u)])
    assert span_store.find_trace_ids(TraceQuery("orders", limit=2)) == [t, u]


def test_find_by_operation(span_store: SpanStore) -> None:
    a, b = trace_id(), trace_id()
    written(span_store, [span(a, name="orders/create"), span(b, name="orders/cancel")])
    assert span_store.find_trace_ids(TraceQuery("orders", operation="orders/cancel")) == [b]


def test_find_the_newest_matches_among_many_traces(span_store: SpanStore) -> None:
    # Enough traces that every HBase salt bucket holds several, and a limit below the
    # matches: the newest ones must come back, in order, whatever bucket they sit in.
    ids = [trace_id() for _ in range(240)]
    written(span_store, [
        span(t, start_us=BASE_US + i * MS, duration_us=(i % 4) * MS,
             name="orders/cancel" if i % 3 == 0 else "orders/create",
             attributes={"zone": "it's" if i % 5 == 0 else "b"},
             status="ERROR" if i % 7 == 0 else "OK")
        for i, t in enumerate(ids)
    ])  # fmt: skip
    newest = ids[::-1]
    find = span_store.find_trace_ids
    assert find(TraceQuery("orders", limit=20)) == newest[:20]
    cancels = [t for i, t in enumerate(ids) if i % 3 == 0][::-1]
    assert find(TraceQuery("orders", operation="orders/cancel", limit=20)) == cancels[:20]
    assert find(TraceQuery("orders", operation="ORDERS/CANCEL", limit=20)) == []
    quoted = [t for i, t in enumerate(ids) if i % 5 == 0][::-1]
    assert find(TraceQuery("orders", tags={"zone": "it's"}, limit=7)) == quoted[:7]
    errors = [t for i, t in enumerate(ids) if i % 7 == 0][::-1]
    assert find(TraceQuery("orders", errors_only=True, limit=30)) == errors[:30]
    slow = [t for i, t in enumerate(ids) if i % 4 == 3][::-1]
    assert find(TraceQuery("orders", min_duration_us=3 * MS, limit=25)) == slow[:25]


def test_find_by_tags(span_store: SpanStore) -> None:
    a, b, c = trace_id(), trace_id(), trace_id()
    written(span_store, [
        span(a, start_us=BASE_US + 3, attributes={"zone": "a", "vip": True, "tries": 2}),
        span(b, start_us=BASE_US + 2, attributes={"zone": "b", "vip": True}),
        span(c, start_us=BASE_US + 1, attributes={"zone": "a", "vip": False}),
    ])  # fmt: skip
    find = span_store.find_trace_ids
    assert find(TraceQuery("orders", tags={"zone": "a"})) == [a, c]
    assert find(TraceQuery("orders", tags={"zone": "a", "vip": "true"})) == [a]
    assert find(TraceQuery("orders", tags={"tries": "2"})) == [a]
    assert find(TraceQuery("orders", tags={"zone": "c"})) == []


def test_find_by_duration(span_store: SpanStore) -> None:
    fast, mid, slow = trace_id(), trace_id(), trace_id()
    written(span_store, [
        span(fast, duration_us=1 * MS, start_us=BASE_US + 3),
        span(mid, duration_us=10 * MS, start_us=BASE_US + 2),
        span(slow, duration_us=100 * MS, start_us=BASE_US + 1),
    ])  # fmt: skip
    find = span_store.find_trace_ids
    assert find(TraceQuery("orders", min_duration_us=10 * MS)) == [mid, slow]
    assert find(TraceQuery("orders", max_duration_us=10 * MS)) == [fast, mid]
    assert find(TraceQuery("orders", min_duration_us=5 * MS, max_duration_us=50 * MS)) == [mid]


def test_find_by_time_range_min_inclusive_max_exclusive(span_store: SpanStore) -> None:
    ids = [trace_id() for _ in range(5)]
    written(span_store, [span(t, start_us=BASE_US + i * S) for i, t in enumerate(ids)])
    q = TraceQuery("orders", start_min_us=BASE_US + 1 * S, start_max_us=BASE_US + 3 * S)
    assert span_store.find_trace_ids(q) == [ids[2], ids[1]]
    # A range in another day than "today" works too (daily indices on Elasticsearch).
    old = trace_id()
    written(span_store, [span(old, start_us=BASE_US - 3 * 86400 * S)])
    q = TraceQuery("orders", start_max_us=BASE_US - 86400 * S)
    assert span_store.find_trace_ids(q) == [old]


def test_find_errors_only(span_store: SpanStore) -> None:
    ok, bad = trace_id(), trace_id()
    written(span_store, [span(ok, start_us=BASE_US + 2), span(bad, status="ERROR")])
    assert span_store.find_trace_ids(TraceQuery("orders", errors_only=True)) == [bad]


def test_all_conditions_hold_on_the_same_span(span_store: SpanStore) -> None:
    t = trace_id()  # one span is slow, another has the tag: no single span matches both
    written(span_store, [span(t, duration_us=100 * MS, attributes={}),
                         span(t, duration_us=1, attributes={"zone": "z"})])  # fmt: skip
    assert (
        span_store.find_trace_ids(TraceQuery("orders", tags={"zone": "z"}, min_duration_us=50 * MS))
        == []
    )


def test_find_traces_returns_whole_traces(span_store: SpanStore) -> None:
    t = trace_id()
    written(span_store, [span(t, service="gateway"), span(t, start_us=BASE_US + 5)])
    (trace,) = span_store.find_traces(TraceQuery("gateway"))
    assert trace.trace_id == t and {s.service for s in trace.spans} == {"gateway", "orders"}


def test_services_and_operations(span_store: SpanStore) -> None:
    written(span_store, [
        span(service="orders", name="orders/create"),
        span(service="orders", name="orders/cancel"),
        span(service="billing", name="billing/charge"),
    ])  # fmt: skip
    assert span_store.services() == ["billing", "orders"]
    assert span_store.operations("orders") == ["orders/cancel", "orders/create"]
    assert span_store.operations("nobody") == []


def test_retention_forgets_spans_started_before_the_cutoff(span_store: SpanStore) -> None:
    old, new = trace_id(), trace_id()
    written(span_store, [span(old, start_us=BASE_US - 2 * 86400 * S),
                         span(new, start_us=BASE_US)])  # fmt: skip
    span_store.delete_before(BASE_US - 86400 * S)
    span_store.refresh()
    assert span_store.get_trace(old) is None
    assert span_store.get_trace(new) is not None
    assert span_store.find_trace_ids(TraceQuery("orders")) == [new]
    assert span_store.count() == 1


def test_a_large_batch(span_store: SpanStore) -> None:
    traces = [trace_id() for _ in range(200)]
    batch = [span(t, start_us=BASE_US + i) for i in range(10) for t in traces]
    written(span_store, batch)
    assert span_store.count() == 2000
    assert len(span_store.get_trace(traces[7]).spans) == 10


# -- analytics ------------------------------------------------------------------------------
def kpi(service: str, window_start_us: int, method: str = "create", count: int = 10) -> KpiSample:
    latency = {"p50": 1.0, "p99": 9.5, "buckets": {"1": 5, "+Inf": 5}}
    return KpiSample(service=service, instance="10.0.0.7:7001", method=method, role="provider",
                     window_start_us=window_start_us, window_s=10, count=count, errors=1,
                     latency_ms=latency)  # fmt: skip


def test_kpis_are_stored_once_per_window_and_read_by_range(analytics: AnalyticsStore) -> None:
    samples = [kpi("orders", BASE_US + i * 10 * S) for i in range(4)] + [kpi("billing", BASE_US)]
    analytics.write_kpis(samples)
    analytics.write_kpis(samples[:2])  # redelivered
    analytics.write_kpis([kpi("orders", BASE_US, count=12)])  # a corrected window replaces
    analytics.refresh()
    got = analytics.kpis("orders", BASE_US, BASE_US + 30 * S)
    assert [s.window_start_us for s in got] == [BASE_US, BASE_US + 10 * S, BASE_US + 20 * S]
    assert got[0].count == 12 and got[1] == samples[1]
    assert analytics.kpis("orders", BASE_US, BASE_US + 60 * S, method="other") == []


def test_dependencies_top_callers_and_weights(analytics: AnalyticsStore) -> None:
    w = BASE_US
    analytics.write_dependencies([
        DependencyEdge("gateway", "orders", w, 60, 100, 2, 9.0),
        DependencyEdge("orders", "billing", w, 60, 80),
        DependencyEdge("gateway", "orders", w + 60 * S, 60, 50),
        DependencyEdge("gateway", "orders", w - 60 * S, 60, 1),
    ])  # fmt: skip
    analytics.write_top_callers([
        CallerStat("orders", "gateway", w, 60, 100, 2, 2.0, 9.0),
        CallerStat("orders", "admin", w, 60, 30, 0, 1.0, 3.0),
        CallerStat("orders", "gateway", w + 60 * S, 60, 50, 0, 5.0, 12.0),
        CallerStat("billing", "orders", w, 60, 999),
    ])  # fmt: skip
    analytics.write_weights([
        WeightChange("orders", "10.0.0.7:7001", w + 5, 50, "p99 over budget"),
        WeightChange("orders", "10.0.0.8:7001", w + 5, 100),
        WeightChange("billing", "10.0.0.9:7001", w, 100),
    ])  # fmt: skip
    analytics.refresh()
    edges = analytics.dependencies(w, w + 120 * S)
    assert [(e.caller, e.callee, e.calls) for e in edges] == [
        ("gateway", "orders", 100), ("orders", "billing", 80), ("gateway", "orders", 50)
    ]  # fmt: skip
    top = analytics.top_callers("orders", w, w + 120 * S)
    assert [(c.caller, c.calls, c.errors) for c in top] == [("gateway", 150, 2), ("admin", 30, 0)]
    assert top[0].avg_ms == 3.0 and top[0].p99_ms == 12.0
    assert analytics.top_callers("orders", w, w + 120 * S, limit=1)[0].caller == "gateway"
    history = analytics.weights("orders", w, w + 60 * S)
    assert [(c.instance, c.weight) for c in history] == [("10.0.0.7:7001", 50),
                                                         ("10.0.0.8:7001", 100)]  # fmt: skip
    analytics.delete_before(w)
    analytics.refresh()
    assert len(analytics.dependencies(0, w + 120 * S)) == 3


def test_scan_yields_every_span_started_in_the_window_once(span_store: SpanStore) -> None:
    inside = [span(trace_id(), start_us=BASE_US + i * MS) for i in range(12)]
    inside += [span(inside[0].trace_id, service="billing", start_us=BASE_US + 5)]
    before = span(inside[0].trace_id, start_us=BASE_US - 1)  # same trace, outside the window
    after = span(trace_id(), start_us=BASE_US + S)  # the end is exclusive
    written(span_store, [*inside, before, after])
    scanned = list(span_store.scan_spans(BASE_US, BASE_US + S))
    assert sorted(scanned, key=lambda s: s.span_id) == sorted(inside, key=lambda s: s.span_id)
    assert list(span_store.scan_spans(BASE_US + 2 * S, BASE_US + 3 * S)) == []


def test_scan_pages_through_a_window(
    span_store: SpanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.modules[type(span_store).__module__], "SCAN_PAGE", 3)
    t = trace_id()  # one trace: HBase keeps it in one salt bucket, so its pages are tested
    spans = [span(t, start_us=BASE_US + i // 2) for i in range(20)]  # ties in start too
    written(span_store, spans)
    scanned = [s.span_id for s in span_store.scan_spans(BASE_US, BASE_US + S)]
    assert sorted(scanned) == sorted(s.span_id for s in spans)


def test_dependency_edges_of_three_levels_are_kept_apart(analytics: AnalyticsStore) -> None:
    w = BASE_US
    service = DependencyEdge("gateway", "orders", w, 60, 10, 1, 9.0, 1.0, 5.0)
    instances = DependencyEdge("gateway", "orders", w, 60, 4, caller_instance="a:1",
                               callee_instance="b:2")  # fmt: skip
    method = DependencyEdge("gateway", "orders", w, 60, 7, method="orders.Api/create")
    analytics.write_dependencies([service, instances, method])
    analytics.write_dependencies([service])  # a re-run overwrites
    analytics.refresh()
    assert analytics.dependencies(w, w + S) == [service]
    assert analytics.dependencies(w, w + S, level="instance") == [instances]
    assert analytics.dependencies(w, w + S, level="method") == [method]
