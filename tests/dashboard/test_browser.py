"""Every page in a real headless Chromium, checked for what a person sees; a screenshot
of each lands in tests/artifacts/ for review."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.dashboard.browser import count, screenshot, wait_for
from tests.dashboard.conftest import Seeded

ROWS = ".ag-center-cols-container .ag-row"
BARS = "#trace-waterfall .barlayer .point"


def _grid_text(browser: Any) -> str:
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(r => r.innerText).join('\\n')",
        ROWS,
    )


def test_search_by_tag_from_the_form_finds_the_trace_and_keeps_it_in_the_url(
    browser: Any, dashboard_url: str, seeded: Seeded, artifacts: Path
) -> None:
    browser.get(f"{dashboard_url}/?service=gateway&lookback=1d")
    wait_for(lambda: count(browser, ROWS) == 20, what="the first 20 of 33 results")
    wait_for(lambda: count(browser, "#traces-scatter .scatterlayer .point") == 33,
             what="one dot per trace on the scatter")  # fmt: skip
    tags = browser.find_element(By.ID, "traces-tags")
    tags.send_keys("customer=c7")
    browser.find_element(By.ID, "traces-search").click()
    wait_for(lambda: "tags=customer%3Dc7" in browser.current_url, what="the search in the URL")
    wait_for(lambda: count(browser, ROWS) == 1, what="the one trace tagged customer=c7")
    href = f"/trace/{seeded.tagged['c7']}"
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, f"{ROWS} a").get_attribute("href")
             .endswith(href), what="the row's link to its trace")  # fmt: skip
    assert "gateway: gateway/checkout" in _grid_text(browser)
    screenshot(browser, artifacts, "traces-by-tag")
    shared = browser.current_url  # a link reproduces the view
    browser.get(shared)
    wait_for(lambda: count(browser, ROWS) == 1, what="the same result from the shared URL")
    assert browser.find_element(By.ID, "traces-tags").get_attribute("value") == "customer=c7"


def test_the_waterfall_shows_one_bar_per_span_and_a_clicked_span_detail(
    browser: Any, dashboard_url: str, seeded: Seeded, artifacts: Path
) -> None:
    browser.get(f"{dashboard_url}/trace/{seeded.big}")
    wait_for(lambda: count(browser, BARS) == 60, what="60 bars for 60 spans")
    header = browser.find_element(By.ID, "trace-header").text
    assert "60 spans" in header and "ERROR" in header
    # the labels' Markdown component loads its script on first use, after the chart maybe
    wait_for(lambda: count(browser, "#trace-labels .wf-label") == 60, what="one label per bar")
    first = browser.find_element(By.CSS_SELECTOR, "#trace-labels .wf-label").text
    assert first == "▾ gateway: gateway/checkout"
    legend = browser.find_element(By.ID, "trace-legend").text
    assert "critical path" in legend and "error" in legend

    def detail_text() -> str:
        text = browser.find_element(By.ID, "trace-detail").text
        return text if "span id" in text else ""

    for attempt in range(3):  # as a person would click again on a busy machine
        root_bar = browser.find_elements(By.CSS_SELECTOR, BARS)[0]
        ActionChains(browser).move_to_element(root_bar).pause(0.3).click().perform()
        try:
            detail = wait_for(detail_text, timeout=10, what="the clicked span's detail")
            break
        except AssertionError:
            if attempt == 2:
                raise
    assert "gateway: gateway/checkout" in detail and "log correlation" in detail
    screenshot(browser, artifacts, "trace-waterfall")
    browser.find_element(By.ID, "trace-collapse-all").click()
    wait_for(lambda: 1 < count(browser, BARS) < 60, what="fewer bars once collapsed")
    browser.find_element(By.ID, "trace-expand-all").click()
    wait_for(lambda: count(browser, BARS) == 60, what="every bar again once expanded")


def test_compare_marks_the_spans_that_differ(
    browser: Any, dashboard_url: str, seeded: Seeded, artifacts: Path
) -> None:
    browser.get(f"{dashboard_url}/compare?a={seeded.compare_a}&b={seeded.compare_b}")
    summary = wait_for(lambda: browser.find_element(By.ID, "compare-summary").text,
                       what="the comparison")  # fmt: skip
    assert summary == "2 of 4 operation paths differ"
    only_b = browser.find_element(By.CSS_SELECTOR, "tr.diff-only-b")
    assert "payments: payments/charge" in only_b.text and "only in B" in only_b.text
    assert "orders: orders/create" in browser.find_element(By.CSS_SELECTOR, "tr.diff-more-b").text
    assert count(browser, "tr.diff-same") == 2
    screenshot(browser, artifacts, "compare")


def test_a_store_that_is_down_shows_a_sentence(
    browser: Any, down_dashboard_url: str, artifacts: Path
) -> None:
    browser.get(f"{down_dashboard_url}/?service=gateway")
    alert = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "[role=alert]").text,
                     what="the store-down message")  # fmt: skip
    assert alert.startswith("UNAVAILABLE: the span store at elasticsearch://127.0.0.1:1")
    assert "Traceback" not in browser.page_source
    screenshot(browser, artifacts, "store-down")


def test_the_dependency_graph_shows_the_topology_and_its_numbers(
    browser: Any, dashboard_url: str, artifacts: Path
) -> None:
    browser.get(f"{dashboard_url}/dependencies?lookback=1h")

    def texts(css: str) -> list[str]:
        return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]

    wait_for(lambda: len([t for t in texts("#deps-graph .annotation-text") if "calls" in t]) == 3,
             what="one labelled edge per call relation")  # fmt: skip
    labels = sorted(t for t in texts("#deps-graph .annotation-text") if "calls" in t)
    assert labels[-1] == "900 calls · 1.0% err · p99 22.0 ms"
    assert sorted(texts("#deps-graph .textpoint")) == ["gateway", "orders", "payments", "stock"]
    wait_for(lambda: count(browser, f"#deps-table {ROWS}") == 3,
             what="the three edges in the table")  # fmt: skip
    wait_for(lambda: count(browser, f"#deps-paths {ROWS}") == 2, what="the two call paths")
    assert "gateway > orders > payments" in browser.find_element(By.ID, "deps-paths").text
    wait_for(lambda: count(browser, f"#deps-critical {ROWS}") == 2, what="two critical shares")
    screenshot(browser, artifacts, "dependencies")


def test_the_services_page_shows_callers_kpis_and_weights(
    browser: Any, dashboard_url: str, artifacts: Path
) -> None:
    browser.get(f"{dashboard_url}/services?service=orders&lookback=1h")
    callers = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "table.callers").text,
                       what="the top callers")  # fmt: skip
    assert callers.index("gateway") < callers.index("batch-job")
    wait_for(lambda: count(browser, "#services-qps .scatterlayer .trace") == 1,
             what="the calls-per-second line")  # fmt: skip
    assert "p99 3x the service median" in browser.find_element(By.ID, "services-weights").text
    screenshot(browser, artifacts, "services")


def test_a_box_drawn_on_the_scatter_keeps_those_traces_and_a_dot_opens_one(
    browser: Any, dashboard_url: str
) -> None:
    browser.get(f"{dashboard_url}/?service=gateway&lookback=1d")
    dots = "#traces-scatter .scatterlayer .point"
    wait_for(lambda: count(browser, dots) == 33, what="one dot per trace")
    wait_for(lambda: count(browser, ROWS) == 20, what="the table")
    drag = browser.find_element(By.CSS_SELECTOR, "#traces-scatter .nsewdrag")
    width, height = drag.size["width"], drag.size["height"]
    # a box over the right half of the plot (the newer half of the time axis), as a mouse
    box = ActionChains(browser).move_to_element_with_offset(drag, width // 20, -height // 2 + 2)
    box.click_and_hold().move_by_offset(width // 2 - width // 20, height - 4).release().perform()
    caption = wait_for(lambda: "selected on the chart" in (t := browser.find_element(
        By.ID, "traces-caption").text) and t, what="the table narrowed to the box")  # fmt: skip
    kept = int(caption.split()[0])
    assert 0 < kept < 33 and caption.endswith("of 33 traces selected on the chart")
    wait_for(lambda: count(browser, ROWS) == min(kept, 20), what="only the boxed traces")
    browser.get(f"{dashboard_url}/?service=gateway&lookback=1d")  # a fresh chart: no box
    wait_for(lambda: count(browser, dots) == 33, what="the dots again")
    first = browser.find_elements(By.CSS_SELECTOR, dots)[0]
    for attempt in range(3):  # a click on a dot opens its trace
        ActionChains(browser).move_to_element(first).pause(0.3).click().perform()
        try:
            wait_for(lambda: "/trace/" in browser.current_url, timeout=10, what="the trace page")
            break
        except AssertionError:
            if attempt == 2:
                raise
    wait_for(lambda: count(browser, BARS) > 0, what="the opened trace's waterfall")
