"""How a trace reads: tree order, the critical path, the summary and the comparison."""

from __future__ import annotations

from storage import Trace, compare_traces, critical_path, span_tree, summary_line, tree_lines
from tests.storage.spans import BASE_US, span, trace_id


def _trace(*spans) -> Trace:
    return Trace(spans[0].trace_id, sorted(spans, key=lambda s: s.start_us))


def test_tree_is_depth_first_with_children_oldest_first() -> None:
    t = trace_id()
    root = span(t, name="root", duration_us=100)
    late = span(t, name="late", parent=root.span_id, start_us=BASE_US + 50, duration_us=10)
    early = span(t, name="early", parent=root.span_id, start_us=BASE_US + 10, duration_us=30)
    grandchild = span(t, name="gc", parent=early.span_id, start_us=BASE_US + 60, duration_us=5)
    nodes = span_tree(_trace(root, late, early, grandchild))
    assert [(n.span.name, n.depth) for n in nodes] == [
        ("root", 0), ("early", 1), ("gc", 2), ("late", 1)
    ]  # fmt: skip
    assert nodes[0].children == (early.span_id, late.span_id)


def test_orphans_become_roots_and_a_parent_loop_loses_no_span() -> None:
    t = trace_id()
    root = span(t, name="root")
    orphan = span(t, name="orphan", parent="ffffffffffffffff", start_us=BASE_US + 5)
    a = span(t, name="a", start_us=BASE_US + 7)
    b = span(t, name="b", parent=a.span_id, start_us=BASE_US + 8)
    a.parent_span_id = b.span_id  # a <-> b: corrupt, but every span is still shown
    nodes = span_tree(_trace(root, orphan, a, b))
    assert sorted(n.span.name for n in nodes) == ["a", "b", "orphan", "root"]
    assert [n.depth for n in nodes if n.span.name in ("root", "orphan")] == [0, 0]


def test_critical_path_follows_the_last_child_to_finish() -> None:
    t = trace_id()
    root = span(t, name="root", duration_us=100)
    # two children run in parallel (10-60, 20-80), then one after them (85-95)
    fast = span(t, name="fast", parent=root.span_id, start_us=BASE_US + 10, duration_us=50)
    slow = span(t, name="slow", parent=root.span_id, start_us=BASE_US + 20, duration_us=60)
    tail = span(t, name="tail", parent=root.span_id, start_us=BASE_US + 85, duration_us=10)
    names = {s.span_id: s.name for s in (root, fast, slow, tail)}
    path = [(names[g.span_id], g.start_us - BASE_US, g.end_us - BASE_US)
            for g in critical_path(_trace(root, fast, slow, tail))]  # fmt: skip
    assert path == [
        ("root", 0, 20), ("slow", 20, 80), ("root", 80, 85), ("tail", 85, 95), ("root", 95, 100)
    ]  # fmt: skip


def test_a_child_outliving_its_parent_is_clipped_on_the_path() -> None:
    t = trace_id()
    root = span(t, name="root", duration_us=100)
    late = span(t, name="async", parent=root.span_id, start_us=BASE_US + 40, duration_us=500)
    path = critical_path(_trace(root, late))
    assert [(g.start_us - BASE_US, g.end_us - BASE_US) for g in path] == [(0, 40), (40, 100)]


def test_summary_and_text_lines() -> None:
    t = trace_id()
    root = span(t, service="gateway", name="gateway/checkout", duration_us=9000)
    child = span(t, parent=root.span_id, start_us=BASE_US + 10, status="ERROR")
    trace = _trace(root, child)
    summary = trace.summary()
    assert (summary.span_count, summary.error_count, summary.services) == (
        2, 1, ("gateway", "orders")
    )  # fmt: skip
    assert (summary.root_service, summary.root_name) == ("gateway", "gateway/checkout")
    assert summary_line(summary).endswith("2 spans  9.000 ms  ERROR")
    lines = tree_lines(trace)
    assert lines[0].startswith("SERVER gateway/checkout")
    assert (
        lines[1].startswith("  SERVER orders.OrderService/create") and "ERROR TIMEOUT" in lines[1]
    )


def test_tree_columns_line_up_whatever_the_names_lengths_and_depth() -> None:
    t = trace_id()
    root = span(t, service="gw", name="g/a", kind="CLIENT", duration_us=123_456_789)
    mid = span(t, service="a-rather-long-service-name", name="orders.OrderService/create",
               parent=root.span_id, start_us=BASE_US + 1, duration_us=1500)  # fmt: skip
    leaf = span(t, service="db", name="x" * 60, kind="INTERNAL", parent=mid.span_id,
                start_us=BASE_US + 2, duration_us=7, status="ERROR")  # fmt: skip
    lines = tree_lines(_trace(root, mid, leaf))
    assert len(lines) == 3
    # the service column starts, and the duration column ends, at one offset on every line
    services = [line.index(s) for line, s in zip(lines, ["gw", "a-rather", "db"], strict=True)]
    ends = [line.index(" ms") for line in lines]
    assert len(set(services)) == 1 and len(set(ends)) == 1, lines
    assert lines[2].endswith("ms  ERROR TIMEOUT")


def test_compare_marks_paths_present_in_one_trace_or_more_often() -> None:
    a, b = trace_id(), trace_id()
    ra = span(a, service="gw", name="checkout")
    rb = span(b, service="gw", name="checkout")
    same_a = span(a, service="orders", name="create", parent=ra.span_id, start_us=BASE_US + 1)
    same_b = span(b, service="orders", name="create", parent=rb.span_id, start_us=BASE_US + 1)
    retry_b = span(b, service="orders", name="create", parent=rb.span_id, start_us=BASE_US + 5)
    only_b = span(b, service="stock", name="reserve", parent=same_b.span_id, start_us=BASE_US + 2)
    only_a = span(a, service="cache", name="get", parent=ra.span_id, start_us=BASE_US + 9)
    diff = compare_traces(_trace(ra, same_a, only_a), _trace(rb, same_b, retry_b, only_b))
    assert [(n.name, n.depth, n.count_a, n.count_b, n.state) for n in diff] == [
        ("checkout", 0, 1, 1, "same"),
        ("create", 1, 1, 2, "more-b"),
        ("reserve", 2, 0, 1, "only-b"),
        ("get", 1, 1, 0, "only-a"),
    ]
