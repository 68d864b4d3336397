"""The demo's Faults page in a real headless Chromium: a request from the form reaches the
demo's inbox checked as the command line checks it, and the page shows what each instance
suffers; a read-only dashboard offers no form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from callscope.demo.fault_page import fault_page
from callscope.demo.faults import FaultInbox, write_fault
from dashboard import create_app, start
from tests.dashboard.browser import count, screenshot, wait_for
from tests.dashboard.conftest import Seeded


@pytest.fixture
def faults_dashboard(seeded: Seeded, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    running = start(create_app(seeded.url, pages=[fault_page(tmp_path)]), "127.0.0.1", 0)
    try:
        yield running.url, tmp_path
    finally:
        running.stop()


def _text(browser: Any, css: str) -> str:
    return browser.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    )


def test_a_fault_asked_on_the_page_reaches_the_demo_and_its_effect_shows(
    browser: Any, faults_dashboard: tuple[str, Path], artifacts: Path
) -> None:
    url, directory = faults_dashboard
    browser.get(f"{url}/faults")
    wait_for(lambda: count(browser, "table.fault-state tr") == 9, what="a row per instance")
    value = browser.find_element(By.ID, "fault-value")
    value.clear()
    value.send_keys("300")
    browser.find_element(By.ID, "fault-apply").click()
    wait_for(lambda: "Asked: ledger#1 +300 ms a call" in _text(browser, "#fault-status"),
             what="the request acknowledged")  # fmt: skip
    inbox = FaultInbox(directory)
    faults, refused = inbox.take()
    assert [(f.kind, f.instance.label, f.delay_ms) for f in faults] == [("slow", "ledger#1", 300)]
    assert refused == []
    write_fault(directory, faults[0], {})  # what the supervisor does with it
    wait_for(lambda: "+300 ms" in _text(browser, "table.fault-state"),
             what="the slowdown in the state table")  # fmt: skip
    screenshot(browser, artifacts, "faults")
    browser.find_element(By.CSS_SELECTOR, "#fault-kind input[value='fail']").click()
    wait_for(lambda: "% of calls" in _text(browser, "#fault-unit"), what="the unit follows")
    value.clear()
    value.send_keys("250")
    browser.find_element(By.ID, "fault-apply").click()
    wait_for(lambda: "BAD_REQUEST" in _text(browser, "#fault-status"),
             what="a failure rate over 100% refused")  # fmt: skip
    assert "a failure rate of 1%..100%" in _text(browser, "#fault-status")
    assert inbox.take() == ([], [])  # nothing posted


def test_a_read_only_dashboard_shows_faults_but_offers_no_form(
    browser: Any, seeded: Seeded, tmp_path: Path
) -> None:
    running = start(
        create_app(seeded.url, read_only=True, pages=[fault_page(tmp_path, read_only=True)]),
        "127.0.0.1",
        0,
    )
    try:
        browser.get(f"{running.url}/faults")
        wait_for(lambda: count(browser, "table.fault-state tr") == 9, what="the state table")
        assert count(browser, "#fault-apply") == 0
        assert "read-only" in _text(browser, ".faults")
    finally:
        running.stop()
