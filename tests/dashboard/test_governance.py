"""The governance page against a real embedded registry with tokens: it reads providers,
weights and rules; it edits a rule only with a write credential, validated, with
compare-and-set; an edit without one is refused (by the page, or by the registry)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dash import Dash
from selenium.webdriver.common.by import By

from dashboard import Sources, create_app, start
from dashboard.pages import governance
from rpc.registry import Principal, RegistryServer, ServiceInstance, connect
from tests.dashboard.browser import screenshot, wait_for
from tests.dashboard.conftest import Seeded

SERVICE = "orders"
TOKENS = {"admin-token": Principal("ops", {"": "write"}),
          "reader-token": Principal("dashboard", {"": "read"})}  # fmt: skip


@pytest.fixture(scope="module")
def registry_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="registry", daemon=True)
    thread.start()
    path = tmp_path_factory.mktemp("registry") / "registry.db"
    server = RegistryServer(path, port=0, tokens=TOKENS)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    admin = connect(f"callscope://admin-token@{server.address}")
    try:
        admin.register(ServiceInstance(SERVICE, "10.0.0.7:7001", "1.0", weight=100,
                                       metadata={"zone": "a"}))  # fmt: skip
        admin.put_config(f"governance/{SERVICE}/weights", {"10.0.0.7:7001": 60})
        yield server.address
    finally:
        admin.close()
        asyncio.run_coroutine_threadsafe(server.stop(0.5), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def page(seeded: Seeded) -> Iterator[Callable[..., SimpleNamespace]]:
    """The page's callbacks over a registry URL; their clients are closed afterwards."""
    opened: list[Sources] = []

    def make(registry_url: str, **options: Any) -> SimpleNamespace:
        opened.append(Sources(seeded.url, registry_url, **options))
        return governance.register(Dash(__name__), opened[-1])

    yield make
    for sources in opened:
        sources.close()


def _text(component: Any) -> str:
    return json.dumps(component, default=lambda c: c.to_plotly_json())


def test_a_service_shows_its_providers_rules_and_weight_history(
    page: Callable[..., SimpleNamespace], registry_address: str
) -> None:
    shown = page(f"callscope://admin-token@{registry_address}")
    options, providers, rules, figure, mode, message, save_disabled = shown.show(SERVICE)
    assert SERVICE in options and message == "" and save_disabled is False
    assert "10.0.0.7:7001" in _text(providers) and '\\"zone\\": \\"a\\"' in _text(providers)
    assert f"governance/{SERVICE}/weights" in _text(rules)
    assert "admin-token" not in mode and mode.endswith("the registry decides")
    lines = {t["name"]: t for t in figure["data"]}
    weight = lines["10.0.0.7:7001 weight"]
    assert weight["y"] == [60] and "p99 3x the service median" in weight["hovertext"][0]
    assert lines["10.0.0.7:7001 p99 ms"]["y"] == [20.0, 20.0, 20.0]  # beside the latency


def test_an_edit_is_validated_and_written_with_compare_and_set(
    page: Callable[..., SimpleNamespace], registry_address: str
) -> None:
    admin = page(f"callscope://admin-token@{registry_address}")
    key = f"governance/{SERVICE}/routing"
    rule = json.dumps({"rules": [{"kind": "tag"}]})
    result, reload = admin.save(1, key, rule, None, SERVICE)
    assert result == f"saved {key}, version 1" and reload == SERVICE
    text, version, message = admin.load(1, key)
    assert json.loads(text) == json.loads(rule) and version == 1 and "version 1" in message
    assert admin.save(2, key, rule, 1, SERVICE)[0] == f"saved {key}, version 2"
    assert "CONFLICT" in _text(admin.save(3, key, rule, 1, SERVICE)[0])  # loaded at 1, now 2
    assert "BAD_REQUEST" in _text(admin.save(4, key, "{not json", 2, SERVICE)[0])
    unknown = _text(admin.save(4, key, '{"rules": [{"when": "zone=a"}]}', 2, SERVICE)[0])
    assert "BAD_REQUEST" in unknown and "needs a kind" in unknown  # the registry's own rules
    weights = f"governance/{SERVICE}/weights"
    assert "BAD_REQUEST" in _text(
        admin.save(5, weights, '{"10.0.0.7:7001": "much"}', None, SERVICE)[0]
    )


def test_an_edit_without_a_write_credential_is_refused(
    page: Callable[..., SimpleNamespace], registry_address: str
) -> None:
    anonymous = page(f"callscope://{registry_address}")
    assert anonymous.show(SERVICE)[-1] is True  # the save button is disabled
    refused = _text(anonymous.save(1, f"governance/{SERVICE}/routing", "{}", None, SERVICE)[0])
    assert "PERMISSION_DENIED" in refused and "read-only" in refused
    forced = page(f"callscope://admin-token@{registry_address}", read_only=True)
    assert "PERMISSION_DENIED" in _text(
        forced.save(1, f"governance/{SERVICE}/x", "{}", None, SERVICE)[0]
    )
    reader = page(f"callscope://reader-token@{registry_address}")
    answer = _text(reader.save(1, f"governance/{SERVICE}/routing", "{}", None, SERVICE)[0])
    assert "PERMISSION_DENIED" in answer and "cannot be written" in answer  # the registry's no
    client = connect(f"callscope://admin-token@{registry_address}")
    try:
        assert client.get_config(f"governance/{SERVICE}/x") is None  # nothing was written
    finally:
        client.close()


def test_the_page_in_a_browser_refuses_a_reader_s_edit(
    browser: Any, seeded: Seeded, registry_address: str, artifacts: Path
) -> None:
    running = start(create_app(seeded.url, f"callscope://reader-token@{registry_address}"))
    try:
        browser.get(f"{running.url}/governance?service={SERVICE}")
        wait_for(lambda: "10.0.0.7:7001" in browser.find_element(By.ID, "gov-providers").text,
                 what="the provider")  # fmt: skip
        editor = browser.find_element(By.ID, "gov-text")
        editor.send_keys('{"rules": []}')
        browser.find_element(By.ID, "gov-save").click()
        refused = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#gov-result [role=alert]")
                           .text, what="the refusal")  # fmt: skip
        assert refused.startswith("PERMISSION_DENIED")
        screenshot(browser, artifacts, "governance")
    finally:
        running.stop()
