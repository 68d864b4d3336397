"""The pages' callbacks, called directly on a seeded store (no browser)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from dash import Dash, no_update
from dash._callback_context import context_value  # Dash's own way to test ctx callbacks
from dash._utils import AttributeDict

from dashboard import Sources
from dashboard.pages import compare, dependencies, services, trace, traces
from tests.dashboard.conftest import Seeded


@contextmanager
def triggered(prop_id: str) -> Iterator[None]:
    token = context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": 1}]))
    try:
        yield
    finally:
        context_value.reset(token)


@pytest.fixture(scope="module")
def pages(seeded: Seeded) -> Iterator[SimpleNamespace]:
    sources = Sources(seeded.url)
    app = Dash(__name__)
    yield SimpleNamespace(
        traces=traces.register(app, sources),
        trace=trace.register(app, sources),
        compare=compare.register(app, sources),
        deps=dependencies.register(app, sources),
        services=services.register(app, sources),
    )
    sources.close()


@pytest.fixture(scope="module")
def down() -> Iterator[SimpleNamespace]:
    sources = Sources("elasticsearch://127.0.0.1:1")  # nothing listens on port 1
    app = Dash(__name__)
    yield SimpleNamespace(traces=traces.register(app, sources), trace=trace.register(app, sources),
                          deps=dependencies.register(app, sources))  # fmt: skip


def _text(component) -> str:
    """Everything a component (or a list of them) would show, as JSON text."""
    return json.dumps(component, default=lambda c: c.to_plotly_json())


def test_search_by_tag_finds_the_one_trace(pages: SimpleNamespace, seeded: Seeded) -> None:
    services, rows, message, _, older_class = pages.traces.run_search(
        "?service=gateway&tags=customer%3Dc7&lookback=1d"
    )
    assert "gateway" in services and "orders" in services
    assert [r["trace_id"] for r in rows] == [seeded.tagged["c7"]]
    assert rows[0]["root"] == f"[gateway: gateway/checkout](/trace/{seeded.tagged['c7']})"
    assert (message, older_class) == ("", "disabled")


def test_errors_only_and_the_older_page(pages: SimpleNamespace, seeded: Seeded) -> None:
    _, rows, *_ = pages.traces.run_search("?service=gateway&errors=1&lookback=1d")
    assert {r["trace_id"] for r in rows} == set(seeded.errors)
    assert all(r["errors"] >= 1 for r in rows)
    _, first, _, older, older_class = pages.traces.run_search(
        "?service=gateway&lookback=1d&limit=20"
    )
    assert len(first) == 20 and older_class == "" and "end=" in older
    _, second, *_ = pages.traces.run_search(older.removeprefix("/"))
    assert {r["trace_id"] for r in first}.isdisjoint(r["trace_id"] for r in second)
    assert len(first) + len(second) == 33  # 30 tagged, the big one, the pair


def test_the_scatter_box_narrows_the_table(pages: SimpleNamespace) -> None:
    _, rows, *_ = pages.traces.run_search("?service=gateway&lookback=1d")
    picked = {"points": [{"customdata": rows[1]["trace_id"]}, {"customdata": rows[4]["trace_id"]}]}
    kept, caption = pages.traces.table(rows, picked)
    assert [r["trace_id"] for r in kept] == [rows[1]["trace_id"], rows[4]["trace_id"]]
    assert caption == f"2 of {len(rows)} traces selected on the chart"
    assert pages.traces.table(rows, None)[1] == f"{len(rows)} traces"
    assert pages.traces.table(rows[:1], None)[1] == "1 trace"
    figure = pages.traces.scatter(rows)
    assert sum(len(t.x) for t in figure.data) == len(rows)


def test_the_form_writes_the_url_and_a_dot_opens_its_trace(pages: SimpleNamespace) -> None:
    form = ("orders", None, "zone=a", "", "5", "6h", "", "", 100, ["1"])
    with triggered("traces-search.n_clicks"):
        href, params = pages.traces.navigate(1, None, None, *form, "")
    assert href == "/?service=orders&tags=zone%3Da&max_ms=5&lookback=6h&errors=1"
    assert params is no_update
    with triggered("traces-search.n_clicks"):  # the same search again reruns in place
        again, params = pages.traces.navigate(2, None, None, *form, href[1:])
    assert again is no_update and params == href[1:]
    with triggered("traces-scatter.clickData"):
        href, _ = pages.traces.navigate(None, None, {"points": [{"customdata": "ab" * 16}]},
                                        *form, "")  # fmt: skip
    assert href == f"/trace/{'ab' * 16}"


def test_two_selected_rows_enable_compare(pages: SimpleNamespace) -> None:
    assert pages.traces.compare([{"trace_id": "x"}]) == ("/compare", "disabled")
    assert pages.traces.compare([{"trace_id": "x"}, {"trace_id": "y"}]) == ("/compare?a=x&b=y", "")


def test_the_waterfall_has_one_bar_per_span_and_folds(
    pages: SimpleNamespace, seeded: Seeded
) -> None:
    figure, labels, legend, header, message = pages.trace.render(seeded.big, [], "")
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    assert sum(len(t["y"]) for t in bars) == 60 and message == ""
    assert labels.children.count('class="wf-label') == 60
    assert labels.children.startswith('<div class="wf-label error" style="padding-left:0.3em" ')
    assert labels.children.split(">", 2)[1] == "▾ gateway: gateway/checkout</div"
    assert "60 spans" in header and header.endswith("ERROR")
    names = {t["name"] for t in figure["data"]}
    assert {"critical path", "error", "gateway"} <= names
    assert "critical path" in _text(legend) and "gateway" in _text(legend)
    with triggered("trace-collapse-all.n_clicks"):
        folded = pages.trace.fold(None, 1, None, "", [], seeded.big)
    figure, labels, *_ = pages.trace.render(seeded.big, folded, "")
    shown = sum(len(t["y"]) for t in figure["data"] if t["type"] == "bar")
    assert 1 < shown < 60 and labels.children.count('class="wf-label') == shown
    with triggered("trace-expand-all.n_clicks"):
        assert pages.trace.fold(None, None, 1, "", folded, seeded.big) == []


def test_a_clicked_span_shows_its_detail_and_toggles(
    pages: SimpleNamespace, seeded: Seeded
) -> None:
    figure, *_ = pages.trace.render(seeded.big, [], "")
    root_id = figure["data"][0]["customdata"][0]
    assert pages.trace.select({"points": [{"customdata": root_id}]}) == root_id
    assert pages.trace.select({"points": [{"x": 1}]}) is no_update  # an event marker
    panel, disabled, label = pages.trace.detail(root_id, [], seeded.big)
    assert (disabled, label) == (False, "collapse selected")
    text = _text(panel)
    assert root_id in text and "log correlation" in text and "attributes" in text
    with triggered("trace-toggle.n_clicks"):
        folded = pages.trace.fold(1, None, None, root_id, [], seeded.big)
    assert root_id in folded
    with triggered("trace-toggle.n_clicks"):
        assert root_id not in pages.trace.fold(2, None, None, root_id, folded, seeded.big)


def test_compare_marks_the_differing_paths(pages: SimpleNamespace, seeded: Seeded) -> None:
    text = _text(pages.compare.show({"a": seeded.compare_a, "b": seeded.compare_b}))
    assert "2 of 4 operation paths differ" in text
    assert "diff-row diff-more-b" in text and "diff-row diff-only-b" in text
    assert "payments: payments/charge" in text
    missing = _text(pages.compare.show({"a": seeded.compare_a, "b": "f" * 32}))
    assert "BAD_REQUEST" in missing and f"no trace {'f' * 32}" in missing


def test_a_store_that_is_down_is_a_sentence(down: SimpleNamespace) -> None:
    _, rows, message, *_ = down.traces.run_search("?service=gateway")
    text = _text(message)
    assert rows == [] and "UNAVAILABLE" in text and "elasticsearch://127.0.0.1:1" in text
    figure, *_, message = down.trace.render("ab" * 16, [], "")
    assert "UNAVAILABLE" in _text(message) and figure["data"] == []
    assert down.traces.operations("gateway") == []
    message = down.deps.show("?lookback=1h")[3]
    assert "UNAVAILABLE" in _text(message) and "analytics store" in _text(message)


def test_a_bad_trace_id_or_search_is_a_sentence(pages: SimpleNamespace) -> None:
    *_, message = pages.trace.render("nope", [], "")
    assert pages.trace.decisions("nope") == ""
    assert "32 lowercase hex digits" in _text(message)
    _, rows, message, *_ = pages.traces.run_search("?service=gateway&min_ms=abc")
    assert rows == [] and "BAD_REQUEST" in _text(message)


def test_a_store_that_does_not_exist_is_not_created(tmp_path) -> None:
    url = f"sqlite://{tmp_path / 'typo' / 'spans.db'}"
    found = traces.register(Dash(__name__), Sources(url))
    _, rows, message, *_ = found.run_search("?service=gateway")
    assert rows == [] and "NOT_FOUND" in _text(message)
    assert not (tmp_path / "typo").exists()


def test_the_dependency_graph_shows_the_topology(pages: SimpleNamespace) -> None:
    figure, rows, caption, message, windows = pages.deps.show("?lookback=1h")
    assert message == "" and caption == "3 service edges from windows of 60 s"
    assert windows == [{"label": "60 s windows", "value": "60"}]
    assert pages.deps.show("?lookback=1h&window=60")[2] == caption
    assert pages.deps.show("?lookback=1h&window=3600")[1] == []  # no batch results seeded
    by_edge = {(r["caller"], r["callee"]): r for r in rows}
    assert set(by_edge) == {("gateway", "orders"), ("orders", "stock"), ("orders", "payments")}
    assert (by_edge[("gateway", "orders")]["calls"], by_edge[("gateway", "orders")]["errors"]) == (
        900, 9
    )  # fmt: skip
    assert by_edge[("orders", "payments")]["p99_ms"] == 22.0  # the worst window's
    arrows = [a for a in figure["layout"]["annotations"] if a["showarrow"]]
    assert len(arrows) == 3
    nodes = figure["data"][0]
    colour = dict(zip(nodes["text"], nodes["marker"]["color"], strict=True))
    assert colour["payments"] == "#d62728" and colour["stock"] == "#2ca02c"  # 10% vs 0% errors


def test_the_graph_drills_down_to_instances_and_methods(pages: SimpleNamespace) -> None:
    _, rows, *_ = pages.deps.show("?lookback=1h&level=instance")
    assert ("gateway gateway-1", "orders orders-1") in {(r["caller"], r["callee"]) for r in rows}
    _, rows, *_ = pages.deps.show("?lookback=1h&level=method&service=payments")
    assert [(r["caller"], r["callee"]) for r in rows] == [("orders", "payments/create")]
    assert "operation=payments/create" in rows[0]["traces"]
    with triggered("deps-graph.clickData"):
        href = pages.deps.navigate("1h", "service", "", None,
                                   {"points": [{"customdata": "orders"}]},
                                   "?lookback=1h&level=service")  # fmt: skip
    assert href == "/dependencies?lookback=1h&level=service&service=orders"


def test_the_dependencies_page_lists_call_paths_and_critical_path_shares(
    pages: SimpleNamespace,
) -> None:
    paths, critical = pages.deps.trace_results("?lookback=1h")
    assert paths == [
        {"path": "gateway > orders > payments", "calls": 300, "errors": 3},
        {"path": "gateway > orders > stock", "calls": 150, "errors": 0},
    ]  # three windows summed
    assert critical == [
        {"service": "payments", "critical_ms": 1800.0, "traces": 270, "share": 0.6},
        {"service": "orders", "critical_ms": 1200.0, "traces": 300, "share": 0.4},
    ]
    paths, critical = pages.deps.trace_results("?lookback=1h&service=stock")
    assert [p["path"] for p in paths] == ["gateway > orders > stock"] and critical == []
    assert pages.deps.trace_results("?lookback=1h&window=3600") == ([], [])


def test_the_services_page_ranks_callers_and_charts_kpis(pages: SimpleNamespace) -> None:
    callers, methods, slowest, weights, title, qps, errors, latency, process, message = (
        pages.services.show("?service=orders&lookback=1h")
    )
    assert message == "" and title == "Health of orders: 6 KPI samples"
    text = _text(callers)
    assert text.index("gateway") < text.index("batch-job") and "900" in text
    assert "orders/create" in _text(methods) and "payments" in _text(slowest)
    assert "p99 3x the service median" in _text(weights)
    assert [round(y, 3) for y in qps["data"][0]["y"]] == [5.0, 5.0, 5.0]
    assert [round(y, 3) for y in errors["data"][0]["y"]] == [1.0, 1.0, 1.0]
    assert len(latency["data"]) == 3 and len(process["data"]) == 2
    *_, prompt = pages.services.show("")
    assert "Choose a service" in _text(prompt)
