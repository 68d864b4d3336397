"""The trace page says why a call was balanced as it was: under a ``weights.applied``
decision, the pipeline's weight changes (with their reasons) that made the document."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash import Dash
from selenium.webdriver.common.by import By

from callscope_contract import SpanEvent, SpanRecord
from dashboard import Sources, create_app, start
from dashboard.pages import trace as trace_page
from storage import WeightChange, open_analytics_store, open_span_store
from tests.dashboard.browser import wait_for

SERVICE = "payment.PaymentService"
TRACE = "c" * 32
SLOW, FAST = "10.0.0.2:7001", "10.0.0.1:7001"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite://{tmp_path_factory.mktemp('reasons') / 'spans.db'}"
    now = int(time.time() * 1e6)
    client = SpanRecord(
        trace_id=TRACE, span_id="1" * 16, name=f"{SERVICE}/charge", kind="CLIENT",
        service="orders", start_us=now, duration_us=9_000, peer_service="payment",
        events=[SpanEvent(now + 10, "weights.applied", {"version": 3})],
    )  # fmt: skip
    server = SpanRecord(
        trace_id=TRACE, span_id="2" * 16, parent_span_id="1" * 16, name=f"{SERVICE}/charge",
        kind="SERVER", service="payment", instance=FAST, start_us=now + 500, duration_us=5_000,
    )  # fmt: skip
    with open_span_store(url) as spans:
        spans.write_spans([client, server])
    with open_analytics_store(url) as analytics:
        analytics.write_weights([
            WeightChange(SERVICE, SLOW, now - 70_000_000, 43, "older step"),
            WeightChange(SERVICE, SLOW, now - 10_000_000, 24, "p95 205 ms vs median 5 ms"),
            WeightChange(SERVICE, FAST, now - 10_000_000, 100, "recovered"),
            WeightChange(SERVICE, SLOW, now + 60_000_000, 11, "after the call"),
        ])  # fmt: skip
    return url


def _text(component: Any) -> str:
    return json.dumps(component, default=lambda c: c.to_plotly_json())


def test_a_weights_applied_decision_shows_the_changes_behind_it(store: str) -> None:
    sources = Sources(store)
    try:
        shown = _text(trace_page.register(Dash(__name__), sources).decisions(TRACE))
    finally:
        sources.close()
    assert "weights.applied" in shown and "version=3" in shown
    assert f"{SLOW} \\u2192 24: p95 205 ms vs median 5 ms" in shown
    assert f"{FAST} \\u2192 100: recovered" in shown
    assert "older step" not in shown and "after the call" not in shown


def test_without_analytics_the_decision_still_shows(store: str, tmp_path: Path) -> None:
    sources = Sources(store, analytics_url="elasticsearch://127.0.0.1:1")  # nothing there
    try:
        shown = _text(trace_page.register(Dash(__name__), sources).decisions(TRACE))
    finally:
        sources.close()
    assert "weights.applied" in shown and "why:" not in shown


@pytest.fixture
def served(store: str) -> Iterator[str]:
    running = start(create_app(store), "127.0.0.1", 0)
    try:
        yield running.url
    finally:
        running.stop()


def test_the_trace_page_shows_why_in_the_browser(browser: Any, served: str) -> None:
    browser.get(f"{served}/trace/{TRACE}")
    why = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, ".weight-why").text,
                   what="the weight changes under weights.applied")  # fmt: skip
    assert why.startswith("why: ") and f"{SLOW} → 24: p95 205 ms vs median 5 ms" in why
