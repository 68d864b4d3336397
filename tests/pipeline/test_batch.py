"""The batch job against an independent plain-Python computation over the same spans.

Counts must be equal exactly; percentiles within the stated rank error of Spark's
``percentile_approx``. The spans come from a store; the results are written to a SQLite,
an Elasticsearch and an HBase analytics store, twice (the second run must overwrite).
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline import PERCENTILE_ACCURACY, PipelineError, run_batch
from storage import open_analytics_store, open_span_store

from .traces import TRUE_EDGES, W_US, generate, group, plain_calls, plain_critical, plain_paths

WINDOW_S = W_US // 1_000_000
BASE = 1_764_150_000_000_000 - 1_764_150_000_000_000 % W_US
TRACES = 240
SPANS = generate(TRACES, BASE + 5_000_000, 2 * W_US - 10_000_000)  # two whole windows


def within_rank_error(values_ms: list[float], q: float, reported: float) -> bool:
    ordered = sorted(values_ms)
    n = len(ordered)
    below = sum(v < reported - 1e-3 for v in ordered)
    at_most = sum(v <= reported + 1e-3 for v in ordered)
    slack = n / PERCENTILE_ACCURACY + 1
    return below - slack <= q * n <= at_most + slack


# -- the run --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite://{tmp_path_factory.mktemp('batch') / 'spans.db'}"
    with open_span_store(url) as store:
        store.write_spans(SPANS)
    return url


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str, hbase_thrift: str
) -> Iterator[list[str]]:
    tag = uuid.uuid4().hex[:8]
    urls = [
        f"sqlite://{tmp_path_factory.mktemp('analytics') / 'analytics.db'}",
        f"elasticsearch://{elasticsearch_url.split('://')[-1]}?prefix=batch{tag}",
        f"hbase://{hbase_thrift}?prefix=batch{tag}",
    ]
    yield urls
    for url in urls:
        with open_analytics_store(url) as analytics:
            analytics.clear()


@pytest.fixture(scope="module")
def result(spark: Any, source: str, stores: list[str]) -> Any:
    """One run over a range that is not aligned on windows, written to every store."""
    return run_batch(
        spark, source, BASE + 1, BASE + 2 * W_US - 1, window_s=WINDOW_S, top_n=2, stores=stores
    )


def test_the_window_is_aligned_and_every_true_edge_is_found(result: Any) -> None:
    assert (result.window.start_us, result.window.end_us) == (BASE, BASE + 2 * W_US)
    edges = {(e.caller, e.callee) for e in result.edges if e.level == "service"}
    assert edges == TRUE_EDGES  # uninstrumented callee (mysql) and caller (cron) included
    assert result.spans == len(SPANS)


@pytest.mark.parametrize("level", ["service", "instance", "method"])
def test_counts_equal_the_plain_computation_exactly(result: Any, level: str) -> None:
    truth = group(plain_calls(SPANS), level)
    got = {}
    for e in result.edges:
        if e.level != level:
            continue
        key = {
            "service": (e.caller, e.callee),
            "instance": (e.caller, e.callee, e.caller_instance, e.callee_instance),
            "method": (e.caller, e.callee, e.method),
        }[level]
        got[(e.window_start_us, *key)] = (e.calls, e.errors)
    assert got == {k: (len(v), sum(c[7] for c in v)) for k, v in truth.items()}
    assert result.calls == len(plain_calls(SPANS))


def test_percentiles_are_within_the_sketchs_rank_error(result: Any) -> None:
    truth = group(plain_calls(SPANS), "method")
    checked = 0
    for e in result.edges:
        if e.level != "method":
            continue
        values = [c[6] / 1000 for c in truth[(e.window_start_us, e.caller, e.callee, e.method)]]
        for q, reported in ((0.5, e.p50_ms), (0.95, e.p95_ms), (0.99, e.p99_ms)):
            assert within_rank_error(values, q, reported), (e, q)
            checked += 1
    assert checked >= 3 * 2 * len(TRUE_EDGES)


def test_top_callers_are_the_busiest_n(result: Any) -> None:
    calls = plain_calls(SPANS)
    per: dict[tuple, Counter] = defaultdict(Counter)
    for c in calls:
        per[(c[5], c[2])][c[0]] += 1
    expected = set()
    for (window, callee), counter in per.items():
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        expected |= {(window, callee, caller, n) for caller, n in ranked}
    got = {(s.window_start_us, s.service, s.caller, s.calls) for s in result.callers}
    assert got == expected


def test_latency_rollups_per_service_and_method(result: Any) -> None:
    served = Counter()
    for s in SPANS:
        if s.kind == "SERVER":
            window = s.start_us - s.start_us % W_US
            served[(window, s.service, s.name)] += 1
            served[(window, s.service, "*")] += 1
    got = {(k.window_start_us, k.service, k.method): k.count for k in result.latency}
    assert got == dict(served)
    assert all(k.app == "callscope-pipeline" and k.window_s == WINDOW_S for k in result.latency)


def stored(url: str) -> tuple[list, int, int, int]:
    with open_analytics_store(url) as analytics:
        edges = analytics.dependencies(BASE, BASE + 2 * W_US)
        methods = analytics.dependencies(BASE, BASE + 2 * W_US, level="method")
        served = sum(k.count for k in analytics.kpis("billing", BASE, BASE + 2 * W_US, method="*"))
        callers = analytics.top_callers("billing", BASE, BASE + 2 * W_US)
    edges_seen = sorted((e.caller, e.callee, e.window_start_us, e.calls) for e in edges)
    return edges_seen, len(methods), served, sum(c.calls for c in callers)


def test_results_are_written_to_every_store_and_a_rerun_overwrites(
    spark: Any, source: str, result: Any, stores: list[str]
) -> None:
    first = {url: stored(url) for url in stores}
    run_batch(spark, source, BASE, BASE + 2 * W_US, window_s=WINDOW_S, top_n=2, stores=stores)
    service_edges = sorted(
        (e.caller, e.callee, e.window_start_us, e.calls) for e in result.edges
        if e.level == "service"
    )  # fmt: skip
    billing = sum(1 for s in SPANS if s.kind == "SERVER" and s.service == "billing")
    methods = sum(e.level == "method" for e in result.edges)
    for url in stores:
        edges, method_edges, served, callers = stored(url)
        assert (edges, method_edges, served) == (service_edges, methods, billing), url
        assert callers == billing  # billing's callers: orders and cron, both within top 2
        assert stored(url) == first[url]  # the re-run overwrote; nothing doubled


@pytest.mark.parametrize(("option", "value"), [("window_s", 0), ("window_s", 1.5), ("top_n", 0)])
def test_bad_options_are_refused(spark: Any, source: str, option: str, value: Any) -> None:
    with pytest.raises(PipelineError) as caught:
        run_batch(spark, source, BASE, BASE + W_US, **{option: value})
    assert caught.value.code == "BAD_OPTION"


def test_indirect_dependencies_by_path_equal_the_plain_computation(result: Any) -> None:
    truth = plain_paths(SPANS)
    got = {(p.window_start_us, p.services): [p.calls, p.errors] for p in result.paths}
    assert got == truth
    assert {p.services for p in result.paths} >= {("gateway", "orders", "billing"),
                                                  ("gateway", "orders", "mysql")}  # fmt: skip


def test_critical_path_shares_equal_the_plain_computation(result: Any) -> None:
    truth = plain_critical(SPANS)
    window_us: dict[int, int] = Counter()
    for (window, _), (micros, _) in truth.items():
        window_us[window] += micros
    got = {(s.window_start_us, s.service): s for s in result.critical}
    assert set(got) == {k for k in truth if k[1]}
    for (window, service), share in got.items():
        micros, on_path = truth[(window, service)]
        assert share.critical_ms == pytest.approx(micros / 1000, abs=1e-3)
        assert share.share == pytest.approx(micros / window_us[window], abs=1e-6)
        assert (share.traces, share.window_traces) == (on_path, truth[(window, "")][1])
    for window in window_us:
        assert sum(s.share for s in result.critical if s.window_start_us == window) == (
            pytest.approx(1.0, abs=1e-4)
        )


def test_paths_and_shares_are_stored_in_every_backend(result: Any, stores: list[str]) -> None:
    for url in stores:
        with open_analytics_store(url) as analytics:
            paths = analytics.paths(BASE, BASE + 2 * W_US)
            shares = analytics.critical_shares(BASE, BASE + 2 * W_US)
            from_gateway = analytics.paths(BASE, BASE + 2 * W_US, origin="gateway")
        assert sorted(paths, key=str) == sorted(result.paths, key=str), url
        assert sorted(shares, key=str) == sorted(result.critical, key=str), url
        assert from_gateway and all(p.services[0] == "gateway" for p in from_gateway)
