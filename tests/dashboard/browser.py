"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``) under Selenium,
for the dashboard's browser tests and its render benchmark."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1500,1000",
)  # fmt: skip


class NoBrowser(RuntimeError):
    """Chromium or its driver is not installed (``make test`` installs them)."""


def open_browser() -> Any:
    """A fresh headless Chromium with its own profile; ``quit()`` it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        raise NoBrowser(
            "the dashboard's browser tests need Debian's chromium and chromium-driver: "
            "run `sh deploy/chromium.sh` as root (make test does)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='callscope-chromium-')}")
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    return browser


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "the page") -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as err:
            last = err
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} did not show within {timeout} s (last: {last!r})")


def count(browser: Any, css: str) -> int:
    return browser.execute_script("return document.querySelectorAll(arguments[0]).length", css)


def screenshot(browser: Any, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    browser.save_screenshot(str(path))
    return path
