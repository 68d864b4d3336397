"""The alarms page: its callbacks on the seeded store, then a real headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dash import Dash
from selenium.webdriver.common.by import By

from dashboard import Sources
from dashboard.pages import alarms
from tests.dashboard.browser import count, screenshot, wait_for
from tests.dashboard.conftest import Seeded

ROWS = "table.alarms tr.alarm"


def test_a_page_of_the_newest_alarms_then_the_older_ones(seeded: Seeded) -> None:
    sources = Sources(seeded.url)
    try:
        first = alarms.alarms_view(sources, "?lookback=1h")
        assert len(first["page"].alarms) == alarms.PAGE and first["page"].next_cursor
        starts = [a.window_start_us for a in first["page"].alarms]
        assert starts == sorted(starts, reverse=True)
        older = alarms.alarms_view(sources, f"?lookback=1h&cursor={first['page'].next_cursor}")
        assert len(older["page"].alarms) == 26 - alarms.PAGE and not older["page"].next_cursor
        stock = alarms.alarms_view(sources, "?service=stock&lookback=15m")
        assert [a.rule for a in stock["page"].alarms] == ["stock-errors"]
        none = alarms.alarms_view(sources, "?service=search")
        assert "No alarm of search" in str(none["table"])
    finally:
        sources.close()
    down = Sources("elasticsearch://127.0.0.1:1")  # nothing listens on port 1
    show = alarms.register(Dash(__name__), down).show
    *_, message = show("?lookback=1h")
    assert "UNAVAILABLE" in str(message) and "analytics store" in str(message)
    down.close()


def test_the_alarms_page_shows_states_pages_and_filters(
    browser: Any, dashboard_url: str, down_dashboard_url: str, artifacts: Path
) -> None:
    browser.get(f"{dashboard_url}/alarms?lookback=1h")
    wait_for(lambda: count(browser, ROWS) == alarms.PAGE, what="the first page of alarms")
    assert count(browser, f"{ROWS}.firing") == 16 and count(browser, f"{ROWS}.resolved") == 4
    first = browser.find_element(By.CSS_SELECTOR, ROWS).text
    assert "stock-errors" not in first and "orders @ 10.0.0.7:7001" in first
    screenshot(browser, artifacts, "alarms")
    browser.find_element(By.ID, "alarms-older").click()
    wait_for(lambda: count(browser, ROWS) == 26 - alarms.PAGE, what="the older alarms")
    assert parse_qs(urlsplit(browser.current_url).query)["cursor"]
    assert browser.find_element(By.ID, "alarms-newest")

    # the service filter, typed in the form, lands in the URL and starts from the newest
    def service_box() -> Any:
        box = browser.find_element(By.ID, "alarms-service")
        return box if box.is_enabled() else None

    box = wait_for(service_box, what="the service box")
    box.send_keys("stock\n")
    wait_for(lambda: "service=stock" in browser.current_url, what="the service in the URL")
    wait_for(lambda: count(browser, ROWS) == 1, what="the one alarm of stock")
    assert "stock fails 2.5% of calls" in browser.find_element(By.CSS_SELECTOR, ROWS).text
    query = parse_qs(urlsplit(browser.current_url).query)
    assert query["service"] == ["stock"] and "cursor" not in query
    browser.get(f"{down_dashboard_url}/alarms")
    alert = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "[role=alert]").text,
                     what="the store-down message")  # fmt: skip
    assert alert.startswith("UNAVAILABLE: the analytics store at elasticsearch://127.0.0.1:1")
    assert "Traceback" not in browser.page_source
