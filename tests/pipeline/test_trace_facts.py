"""The batch job's trace-level rules (``pipeline._trace_facts``) without Spark: on the
generated trace set against the independent plain computation, across Arrow batch
boundaries, and on the traces real data gets wrong (parent loops, duplicates, orphans)."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from callscope_contract import SpanRecord
from pipeline._trace_facts import (
    CLIENT,
    MAX_DEPTH,
    OTHER,
    PATH,
    SERVER,
    TRACE_COLUMNS,
    partition_facts,
    trace_facts,
)
from storage import Trace, critical_path

from .traces import W_US, generate, plain_critical, plain_paths

TRACE = "ab" * 16
KINDS = {"SERVER": SERVER, "CLIENT": CLIENT}
_ids = itertools.count(1)


def columns(trace: list[SpanRecord]) -> list[list[Any]]:
    """``TRACE_COLUMNS`` of spans, as Spark hands them over (by trace, oldest first)."""
    ordered = sorted(trace, key=lambda s: (s.trace_id, s.start_us, s.span_id))
    return [
        [i == 0 or s.trace_id != ordered[i - 1].trace_id for i, s in enumerate(ordered)],
        [s.span_id for s in ordered],
        [s.parent_span_id for s in ordered],
        [KINDS.get(s.kind, OTHER) for s in ordered],
        [s.service for s in ordered],
        [s.peer_service for s in ordered],
        [s.start_us for s in ordered],
        [s.start_us + s.duration_us for s in ordered],
        [s.status == "ERROR" for s in ordered],
    ]


def facts(spans: Iterable[SpanRecord]) -> dict[tuple[Any, ...], list[int]]:
    traces: dict[str, list[SpanRecord]] = defaultdict(list)
    for s in spans:
        traces[s.trace_id].append(s)
    totals: dict[tuple[Any, ...], list[int]] = {}
    for trace in traces.values():
        trace_facts(*columns(trace)[1:], W_US, totals)
    return totals


def paths(totals: dict[tuple[Any, ...], list[int]]) -> dict[tuple[Any, ...], list[int]]:
    return {(w, names): v for (fact, w, names), v in totals.items() if fact == PATH}


def shares(totals: dict[tuple[Any, ...], list[int]]) -> dict[tuple[Any, ...], list[int]]:
    return {(w, names): v for (fact, w, names), v in totals.items() if fact != PATH}


def span(kind: str, service: str, start: int, duration: int, parent: str = "", **more: Any):
    return SpanRecord(
        trace_id=more.pop("trace_id", TRACE), span_id=f"{next(_ids):016x}", name="m",
        kind=kind, service=service, parent_span_id=parent, start_us=start,
        duration_us=duration, **more,
    )  # fmt: skip


def call(caller: SpanRecord, callee: str, start: int, duration: int):
    """A CLIENT span of ``caller`` and the SERVER span of ``callee`` it is the parent of."""
    trace = caller.trace_id
    client = span("CLIENT", caller.service, start, duration, caller.span_id,
                  peer_service=callee, trace_id=trace)  # fmt: skip
    server = span("SERVER", callee, start + 1, duration - 2, client.span_id, trace_id=trace)
    return client, server


# -- the generated set ----------------------------------------------------------------------
SPANS = generate(400, 5_000_000, 2 * W_US)


def test_paths_and_critical_time_equal_the_plain_computation() -> None:
    totals = facts(SPANS)
    assert paths(totals) == plain_paths(SPANS)
    assert shares(totals) == plain_critical(SPANS)


def test_traces_cut_by_batch_boundaries_are_read_whole() -> None:
    text, number = [pa.string()] * 2, [pa.int64()] * 2
    types = [pa.bool_(), *text, pa.int8(), *text, *number, pa.bool_()]
    arrays = [pa.array(c, t) for c, t in zip(columns(SPANS), types, strict=True)]
    table = pa.table(arrays, names=list(TRACE_COLUMNS))
    out = pa.Table.from_batches(list(partition_facts(table.to_batches(max_chunksize=7), W_US)))
    got = {
        (f, w, tuple(names) if f == PATH else names[0]): [a, b]
        for f, w, names, a, b in zip(*(out.column(i).to_pylist() for i in range(5)), strict=True)
    }
    assert got == facts(SPANS)


# -- what real data gets wrong ---------------------------------------------------------------
def test_a_trace_entered_from_an_uninstrumented_caller_starts_at_that_caller() -> None:
    billing = span("SERVER", "billing", 100, 90, peer_service="cron")
    to_ledger, ledger = call(billing, "ledger", 110, 50)
    to_db = span("CLIENT", "ledger", 120, 20, ledger.span_id, peer_service="postgres",
                 status="ERROR")  # fmt: skip
    nameless = span("CLIENT", "ledger", 130, 5, ledger.span_id)  # no callee named: no call
    assert paths(facts([billing, to_ledger, ledger, to_db, nameless])) == {
        (0, ("cron", "billing", "ledger")): [1, 0],
        (0, ("cron", "billing", "ledger", "postgres")): [1, 1],
    }


def test_a_duplicate_server_span_counts_once_under_the_first() -> None:
    gateway = span("SERVER", "gateway", 0, 100)
    to_orders, orders = call(gateway, "orders", 10, 80)
    to_billing, billing = call(orders, "billing", 20, 40)
    retry = span("SERVER", "billing-b", 30, 50, to_billing.span_id)  # same CLIENT parent
    totals = facts([gateway, to_orders, orders, to_billing, billing, retry])
    assert paths(totals) == {(0, ("gateway", "orders", "billing")): [1, 0]}
    # billing-b, ending after billing, is what to_billing waited on (30-60), not billing
    assert shares(totals)[(0, "billing-b")] == [30, 1]
    assert (0, "billing") not in shares(totals)


def test_a_missing_parent_starts_a_path_and_the_trace_window_is_its_first_start() -> None:
    late = W_US - 10  # the trace starts in window 0; its calls run into window 1
    orphan = span("SERVER", "orders", late, 200, "ffffffffffffffff")
    to_billing, billing = call(orphan, "billing", W_US + 5, 50)
    to_db = span("CLIENT", "billing", W_US + 10, 10, billing.span_id, peer_service="mysql")
    totals = facts([orphan, to_billing, billing, to_db])
    assert paths(totals) == {(W_US, ("orders", "billing", "mysql")): [1, 0]}
    assert {w for w, _ in shares(totals)} == {0}


def test_a_parent_loop_ends_each_path_where_the_ancestry_repeats() -> None:
    a = span("SERVER", "a", 0, 100)
    to_b, b = call(a, "b", 10, 50)
    a.parent_span_id = b.span_id  # a -> b -> to_b -> a: corrupt, but it must not hang
    # to_b's ancestry: a, b (whose parent, to_b, is where it began) -- read from the top
    assert paths(facts([a, to_b, b])) == {(0, ("b", "a", "b")): [1, 0]}


def test_an_ancestry_deeper_than_max_depth_is_read_up_to_it() -> None:
    spans = [span("SERVER", "s0", 0, 10_000)]
    for depth in range(1, 50):
        spans.extend(call(spans[-1], f"s{depth}", depth * 10, 10_000 - depth * 20))
    spans.append(span("CLIENT", "s49", 600, 10, spans[-1].span_id, peer_service="db"))
    got = paths(facts(spans))
    deepest = got[(0, (*(f"s{d}" for d in range(49 - MAX_DEPTH // 2 + 1, 50)), "db"))]
    assert deepest == [1, 0]  # the last MAX_DEPTH spans: 32 SERVER spans, then the callee
    assert max(len(p) for _, p in got) == MAX_DEPTH // 2 + 1
    assert sum(v[0] for v in got.values()) == 50 - 1  # every CLIENT span but the first


def test_critical_time_is_the_trace_views_on_any_tree() -> None:
    """Orphans, loops, duplicate ids, children outliving parents: the job sums, per
    service, exactly the stretches the dashboard draws."""
    rng = random.Random(11)
    for _ in range(300):
        ids = [f"{rng.randrange(1, 12):016x}" for _ in range(rng.randint(1, 9))]
        trace = [
            SpanRecord(
                trace_id=TRACE, span_id=i, name="m", kind=rng.choice(["SERVER", "CLIENT"]),
                service=rng.choice("abc"), start_us=rng.randrange(40),
                duration_us=rng.randrange(30),
                parent_span_id=rng.choice([*ids, "", "ffffffffffffffff"]),
            )
            for i in ids
        ]  # fmt: skip
        ordered = sorted(trace, key=lambda s: (s.start_us, s.span_id))
        view = Trace(TRACE, ordered)
        spent: dict[str, int] = defaultdict(int)
        service = {s.span_id: s.service for s in reversed(ordered)}  # an id's first span
        for segment in critical_path(view):
            spent[service[segment.span_id]] += segment.end_us - segment.start_us
        expected = {(0, s): [us, 1] for s, us in spent.items()} | {(0, ""): [0, 1]}
        got = shares(facts(trace))
        if len(set(ids)) == len(ids):  # with duplicate ids a stretch's span may differ
            assert got == expected, trace
        assert sum(v[0] for v in got.values()) == sum(spent.values())
