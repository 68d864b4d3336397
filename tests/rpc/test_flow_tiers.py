"""Dynamic flow control: tiers from averaged factors, their limits, and a real CPU load."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import rpc
from rpc.flow import DynamicFlow, GradientLimit, TierRules

from .conftest import Echo
from .flow_provider import SERVICE

ROOT = Path(__file__).resolve().parents[2]


def test_tiers_follow_the_average_with_hysteresis():
    flow = DynamicFlow(TierRules({"cpu": (50.0, 90.0)}), window=2)
    assert flow.observe({"cpu": 60.0}) == "warning"
    assert flow.observe({"cpu": 95.0}) == "warning"  # average 77.5
    assert flow.observe({"cpu": 95.0}) == "critical"
    assert flow.observe({"cpu": 80.0}) == "critical"  # average 87.5: above 90 x 0.9
    assert flow.observe({"cpu": 60.0}) == "warning"  # 70: out of critical, still warning
    assert flow.observe({"cpu": 40.0}) == "warning"  # 50: holds
    assert flow.observe({"cpu": 52.0}) == "warning"  # 46: still above 50 x 0.9
    assert flow.observe({"cpu": 30.0}) == "normal"  # 41
    assert flow.changes == 4


def test_a_spike_is_averaged_away():
    flow = DynamicFlow(TierRules({"cpu": (50.0, 90.0)}), window=4)
    for value in (10.0, 10.0, 10.0, 100.0, 10.0):
        assert flow.observe({"cpu": value}) == "normal"


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"thresholds": {"gpu": [1, 2]}}, "unknown factor"),
        ({"thresholds": {"cpu": [90, 50]}}, "above its critical"),
        ({"thresholds": {"cpu": [float("nan"), 50]}}, "finite"),
        ({"limits": {"panic": 1}}, "unknown tier"),
        ({"limits": {"critical": 0}}, "integer >= 1"),
        ({"hysteresis": 1.0}, "hysteresis"),
        ({"cooldown": 1}, "unknown tier rule keys"),
    ],
)
def test_tier_rules_are_validated(doc, message):
    with pytest.raises(ValueError, match=message):
        TierRules.from_dict(doc)


async def test_the_critical_tier_sheds_beyond_its_limit_and_tells_the_next_span(
    make_server, make_client
):
    seen: list[list] = []

    async def spans(inv: rpc.Invocation, call_next):
        try:
            return await call_next(inv)
        finally:
            seen.append(list(inv.events or []))

    server = await make_server(Echo(), interceptors=[spans])
    flow = DynamicFlow(TierRules({"cpu": (50.0, 90.0)}, {"critical": 1}), interval=60).attach(
        server
    )
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    flow.observe({"cpu": 100.0})
    flow.observe({"cpu": 100.0})  # a window of 4: average 100 after any count
    assert flow.tier == "critical"
    slow = asyncio.ensure_future(echo.sleep(0.3))
    while server.inflight < 1:
        await asyncio.sleep(0.01)
    with pytest.raises(rpc.BusyError, match="tier critical"):
        await echo.echo(1)
    assert await slow == 0.3
    assert await echo.echo(2) == 2
    assert [name for name, _ in seen[0]] == ["flow.tier"]  # the first span after the switch
    assert seen[1] == []
    assert flow.shed == 1


def test_the_gradient_limit_shrinks_when_latency_climbs_and_grows_back():
    limit = GradientLimit("s", initial=100, update_every=3600)
    for _ in range(10):
        limit.observe(0.010, inflight=100)
        limit.update(inflight=100)
    steady = limit.limit
    assert steady > 100  # latency flat and the limit in use: it grows
    for _ in range(10):
        limit.observe(0.080, inflight=int(limit.limit))
        limit.update(inflight=int(limit.limit))
    assert limit.limit < steady * 0.75  # queueing: it shrinks
    low = limit.limit
    limit.observe(0.010)
    limit.update(inflight=0)
    assert limit.limit == low  # no demand: no change
    for _ in range(5):
        limit.observe(0.010)
        limit.update(inflight=int(limit.limit))
    assert limit.limit > low  # latency back down: it grows again


@contextmanager
def provider(options: dict) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.rpc.flow_provider", json.dumps(options)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address, "the provider did not start"
        yield address
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


async def _tier_becomes(work, wanted: set[str], seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        state = await work.state()
        if state["tier"] in wanted:
            return state
        assert time.monotonic() < deadline, f"tier stayed {state['tier']}: {state['averages']}"
        await asyncio.sleep(0.1)


async def test_tiers_switch_as_cpu_load_is_applied_and_released(make_client):
    """Real load: two hashing threads in the provider process (its own CPU, so the other
    tenants of a shared box do not decide the outcome), bounded to 10 s."""
    rules = {"thresholds": {"process_cpu": [25, 60]}, "limits": {"critical": 4}}
    with provider({"tiers": rules, "interval": 0.25, "window": 4}) as address:
        work = make_client([address]).proxy(SERVICE, timeout=10)
        await asyncio.sleep(1.5)  # idle readings first
        assert (await work.state())["tier"] == "normal"
        await work.burn(10.0, 2)
        loaded = await _tier_becomes(work, {"warning", "critical"}, 9.0)
        assert loaded["averages"]["process_cpu"] >= 25 * 0.9
        released = await _tier_becomes(work, {"normal"}, 20.0)  # the burn ends within 10 s
        assert released["tiers"][0] in ("warning", "critical") and released["tiers"][-1] == "normal"


async def test_the_gradient_limit_drives_the_services_bulkhead(make_server, make_client):
    server = await make_server(Echo())
    limit = GradientLimit("test.Echo", initial=10, update_every=0.05).attach(server)
    head = server.concurrency.bulkhead("test.Echo")
    assert head.limit.max_concurrent == 10
    echo = make_client([server.address]).proxy("test.Echo", timeout=10)
    for _ in range(4):  # 10 in flight at a time: the limit is in use, so it is judged
        await asyncio.gather(*(echo.sleep(0.06) for _ in range(10)))
    assert limit.updates >= 2 and limit.limit != 10.0
    assert head.limit.max_concurrent == int(limit.limit)  # each update reached the bulkhead
