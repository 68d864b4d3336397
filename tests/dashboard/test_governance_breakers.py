"""The governance page's breakers: what the consumers' KPI counters say about each provider's
breaker (opened, probed, closed, the last state a window saw) and the degraded calls, read
from a real SQLite analytics store, in the callback and in headless Chromium."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dash import Dash
from selenium.webdriver.common.by import By

from callscope_contract import KpiSample
from dashboard import Sources, create_app, start
from dashboard.pages import governance
from rpc.registry import ServiceInstance, connect
from storage import open_analytics_store
from tests.dashboard.browser import screenshot, wait_for

SERVICE = "pay"


def sample(instance: str, start_us: int, role: str = "consumer", **counters: int) -> KpiSample:
    return KpiSample(service=SERVICE, instance=instance, method="charge", role=role,
                     window_start_us=start_us, window_s=10.0, count=5, errors=1, qps=0.5,
                     latency_ms={"p50": 1, "p95": 2, "p99": 3},
                     counters={f"governance.{k.replace('_', '.', 1)}": v
                               for k, v in counters.items()})  # fmt: skip


def seed(tmp_path: Path) -> str:
    url = f"sqlite://{tmp_path / 'kpis.db'}"
    now = int(time.time() * 1e6) - 60_000_000
    samples = [
        sample("10.0.0.1:7001", now, breaker_open=1),
        sample("10.0.0.1:7001", now + 10_000_000, breaker_half_open=1, breaker_open=1),
        sample("10.0.0.2:7001", now, breaker_open=1),
        sample("10.0.0.2:7001", now + 20_000_000, breaker_half_open=1, breaker_closed=1),
        sample("degraded", now + 10_000_000, breaker_degraded=7, mask_degraded=2),
        sample("10.0.0.2:7001", now + 20_000_000, role="provider", mask_degraded=3),
        sample("10.0.0.3:7001", now),  # no governance counter: no row
    ]
    with open_analytics_store(url) as analytics:
        analytics.write_kpis(samples)
    return url


def test_the_breakers_table_reads_the_kpi_counters(tmp_path: Path) -> None:
    sources = Sources(seed(tmp_path), "memory://gov-breakers")
    try:
        table = json.dumps(governance.register(Dash(__name__), sources).breakers(SERVICE),
                           default=lambda c: c.to_plotly_json())  # fmt: skip
    finally:
        sources.close()
    cells = [[c["props"]["children"] for c in row["props"]["children"]]
             for row in json.loads(table)["props"]["children"][1:]]  # fmt: skip
    by_instance = {(c[0], c[1]): c for c in cells}
    assert len(cells) == 4  # 10.0.0.3 had nothing to say
    first = by_instance[("consumer", "10.0.0.1:7001")]
    assert first[3] == "open" and first[5:8] == [2, 1, 0]
    second = by_instance[("consumer", "10.0.0.2:7001")]
    assert second[3] == "closed" and second[5:8] == [1, 1, 1]
    assert by_instance[("consumer", "degraded")][8:] == [7, 2]
    assert by_instance[("provider", "10.0.0.2:7001")][9] == 3


def test_the_breakers_in_a_browser(browser: Any, tmp_path: Path, artifacts: Path) -> None:
    registry = connect("memory://gov-breakers-browser")  # the page's service picker lists it
    registry.register(ServiceInstance(SERVICE, "10.0.0.1:7001"))
    running = start(create_app(seed(tmp_path), "memory://gov-breakers-browser"))
    try:
        browser.get(f"{running.url}/governance?service={SERVICE}")
        text = wait_for(
            lambda: (
                "10.0.0.1:7001" in (t := browser.find_element(By.ID, "gov-breakers").text) and t
            ),
            what="the breakers table",
        )
        assert "open" in text and "closed" in text and "degraded" in text
        assert browser.find_elements(By.CSS_SELECTOR, "#gov-breakers td.breaker-open")
        screenshot(browser, artifacts, "governance-breakers")
    finally:
        running.stop()
        registry.close()
