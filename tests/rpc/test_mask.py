"""Mask degradation through a real registry (an embedded registry process, and ZooKeeper): a
mask written to the registry reaches a consumer (before any network) and a provider process
within one second, and is lifted the same way; a mask no consumer could use is refused with
BAD_REQUEST."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rpc
from rpc.registry import RegistryDirectory, connect
from tests.registry.conftest import ZK, EmbeddedBackend, Process, ZooKeeperBackend

MASK = "governance/reg.Echo/mask"


@pytest.fixture
def registry_url(tmp_path: Path) -> Iterator[str]:
    backend = EmbeddedBackend(tmp_path)
    yield backend.url()
    backend.stop()


@pytest.fixture(params=["embedded", ZK])
def any_registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "embedded":
        yield request.getfixturevalue("registry_url")
    else:
        yield ZooKeeperBackend(request.getfixturevalue("zookeeper_hosts")).url()


@pytest.fixture
def provider(any_registry_url: str) -> Iterator[str]:
    """A provider process of ``reg.Echo`` published in the registry (so it follows masks)."""
    argv = [sys.executable, "-m", "tests.registry.provider", any_registry_url]
    process = Process(argv, ready=":")
    yield process.line
    process.kill()


async def outcome(call: Callable[[], Any]) -> str:
    try:
        return repr(await call())
    except rpc.RpcError as err:
        return err.code


async def until(check: Callable[[], Any], expected: str, within: float = 1.0) -> float:
    """Seconds until ``await check()`` gives ``expected`` (fails past ``within`` + slack)."""
    start = time.monotonic()
    while (got := await check()) != expected:
        assert time.monotonic() - start < within + 0.5, f"still {got!r}, expected {expected!r}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_a_mask_reaches_consumer_and_provider_within_a_second_and_lifts(
    any_registry_url, provider
):
    writer = await asyncio.to_thread(connect, any_registry_url)
    reader = await asyncio.to_thread(connect, any_registry_url)
    seen: list[tuple[str, list[tuple[str, dict[str, Any]]]]] = []

    async def spy(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        try:
            return await call_next(inv)
        finally:
            seen.append((inv.peer, list(inv.events or ())))

    async def consumed(value: int) -> str:
        """The consumer's answer and where it came from (``degraded``: never left the process)."""
        answer = await outcome(lambda: consumer.echo(value))
        return f"{answer}@{'here' if seen[-1][0] == 'degraded' else 'provider'}"

    following = rpc.AsyncClient(RegistryDirectory(reader), injvm=False, interceptors=[spy])
    direct = rpc.AsyncClient([provider], injvm=False)  # no registry: only the provider masks
    try:
        consumer = following.proxy("reg.Echo")
        assert await consumer.echo(1) == 1 and await direct.generic("reg.Echo", "echo", 2) == 2
        await asyncio.sleep(0.5)  # the consumer's watches start in the background
        rule = {"methods": {"echo": {"action": "throw", "code": "BUSY", "message": "masked"}}}
        await asyncio.to_thread(writer.put_config, MASK, rule)
        took = await until(lambda: consumed(3), "BUSY@here")
        took_provider = await until(
            lambda: outcome(lambda: direct.generic("reg.Echo", "echo", 4)), "BUSY"
        )
        assert took < 1.0 and took_provider < 1.0
        events = seen[-1][1]
        assert events[0][0] == "mask.degraded" and events[0][1]["side"] == "consumer"
        assert await consumer.pid() > 0  # an unmasked method still calls

        await asyncio.to_thread(writer.put_config, MASK, {"action": "null"})
        await until(lambda: outcome(lambda: direct.generic("reg.Echo", "pid")), "None")
        await asyncio.to_thread(writer.delete_config, MASK)
        lifted = await until(lambda: consumed(5), "5@provider")
        lifted_provider = await until(
            lambda: outcome(lambda: direct.generic("reg.Echo", "echo", 6)), "6"
        )
        assert lifted < 1.0 and lifted_provider < 1.0

        # Breaker rules ride governance/<service>/cluster, pushed live too.
        rules = {"error_count": 5, "error_ratio": None, "fallback": "null"}
        await asyncio.to_thread(
            writer.put_config, "governance/reg.Echo/cluster", {"breaker": rules}
        )
        start = time.monotonic()
        while following.config.effective("reg.Echo", "echo").breaker != rules:
            assert time.monotonic() - start < 1.5, "the breaker rules did not arrive"
            await asyncio.sleep(0.02)
        assert await consumer.echo(7) == 7
        assert following.cluster.guard("reg.Echo", "echo") is not None
    finally:
        await following.close()
        await direct.close()
        await asyncio.to_thread(writer.close)
        await asyncio.to_thread(reader.close)


REFUSED = [
    (MASK, {"action": "explode"}, "mask.action"),
    (MASK, {"methods": {"echo": {"action": "throw", "code": "OOPS"}}}, "mask.methods.echo.code"),
    (MASK, {"action": "null", "colour": "red"}, "unknown key 'colour'"),
    ("governance/reg.Echo/cluster", {"breaker": {"error_ratio": -0.5}}, "breaker.error_ratio"),
    ("governance/reg.Echo/cluster", {"breaker": {"open_for": 1e6}}, "breaker.open_for"),
    ("governance/reg.Echo/cluster", {"breaker": {"open_for": 1e309}}, "not JSON"),
    ("governance/reg.Echo/cluster", {"breaker": {"probes": 0}}, "breaker.probes"),
    ("governance/reg.Echo/cluster", {"methods": {"get": {"breaker": 3}}}, "methods.get: breaker"),
]


async def test_the_registry_refuses_rules_no_consumer_could_use(registry_url):
    from tests.registry.conftest import RawRegistry

    raw = RawRegistry(registry_url.split("@")[1].split("?")[0], "admin-token")
    try:  # straight to the server: its own validation, not the client helper's
        for key, value, field in REFUSED:
            with pytest.raises(rpc.BadRequestError, match=field.replace(".", r"\.")):
                await raw.call("put_config", key, value, None)
        assert await raw.call("get_config", MASK) is None  # nothing was written
    finally:
        await raw.client.close()
