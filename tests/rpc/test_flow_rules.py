"""Flow rules in the registry: governance/<service>/flow validated before it is written and
applied live by a published provider (and lifted by deleting it)."""

from __future__ import annotations

import asyncio

import pytest

import rpc
from rpc.flow import DynamicFlow
from rpc.registry import connect, publish

from .conftest import Echo

KEY = "governance/test.Echo/flow"


async def _until(check, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never came true"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    "value, message",
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_queue": "lots"}, "max_queue"),
        ({"overflow": "drop"}, "overflow"),
        ({"burst": 3}, "unknown"),
        ([1, 2], "a map"),
    ],
)
def test_the_registry_refuses_flow_rules_no_provider_could_use(value, message):
    registry = connect("memory://flow-validate")
    try:
        with pytest.raises(rpc.BadRequestError, match=message):
            registry.put_config(KEY, value)
        assert registry.get_config(KEY) is None
    finally:
        registry.close()


async def test_a_flow_rule_written_to_the_registry_limits_a_published_provider_live(
    make_server, make_client
):
    registry = connect("memory://flow-live")
    server = await make_server(Echo())
    publication = await publish(server, registry)
    try:
        head = server.concurrency.bulkhead("test.Echo")
        await asyncio.to_thread(
            registry.put_config, KEY, {"max_concurrent": 1, "max_queue": 0, "overflow": "busy"}
        )
        await _until(lambda: head.limit.max_concurrent == 1)
        echo = make_client([server.address]).proxy("test.Echo", timeout=5)
        slow = asyncio.ensure_future(echo.sleep(0.3))
        await _until(lambda: server.inflight == 1)
        with pytest.raises(rpc.BusyError):
            await echo.echo(1)
        await slow
        await asyncio.to_thread(registry.delete_config, KEY)  # lifted: the defaults again
        await _until(lambda: head.limit == server.concurrency.default)
        assert publication.flow is not None and publication.flow.applied >= 2  # + the first read
    finally:
        await publication.stop(grace=1.0, settle=0)
        registry.close()


@pytest.mark.parametrize(
    "value, message",
    [
        ({"connections": {"max_total": 0}}, "max_connections"),
        ({"connections": {"max_per_address": 1.5}}, "max_connections_per_address"),
        ({"connections": {"per_host": 1}}, "connections is a map"),
        ({"tiers": {"thresholds": {"gpu": [1, 2]}}}, "unknown factor"),
        ({"tiers": {"limits": {"critical": -1}}}, "integer >= 1"),
        ({"quota": 1}, "connections, tiers"),
    ],
)
def test_the_registry_refuses_server_flow_rules_no_provider_could_use(value, message):
    registry = connect("memory://flow-global-validate")
    try:
        with pytest.raises(rpc.BadRequestError, match=message):
            registry.put_config("governance/_global/flow", value)
    finally:
        registry.close()


async def test_server_wide_flow_rules_set_connection_caps_and_tiers_live(make_server):
    registry = connect("memory://flow-global-live")
    server = await make_server(Echo())
    publication = await publish(server, registry)
    limits = server.connection_limits
    try:
        rules = {
            "connections": {"max_total": 50, "max_per_address": 5},
            "tiers": {"thresholds": {"inflight": [100, 200]}, "limits": {"critical": 10}},
        }
        await asyncio.to_thread(registry.put_config, "governance/_global/flow", rules)
        await _until(lambda: (limits.max_total, limits.max_per_address) == (50, 5))
        await _until(lambda: any(isinstance(g, DynamicFlow) for g in server.gates))
        (flow,) = [g for g in server.gates if isinstance(g, DynamicFlow)]
        assert flow.rules.limits == {"critical": 10}
        flow.observe({"inflight": 500.0})  # as if sampled: critical, 10 at most
        assert flow.limit == 10
        await asyncio.to_thread(registry.delete_config, "governance/_global/flow")
        await _until(lambda: (limits.max_total, limits.max_per_address) == (10_000, 1_000))
        await _until(lambda: flow.limit is None)  # lifted: tiers still sampled, no limit
    finally:
        await publication.stop(grace=1.0, settle=0)
        registry.close()
