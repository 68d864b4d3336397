"""Business-level degradation: ``rpc.degrade.guarded`` around local functions, sync and async."""

from __future__ import annotations

import asyncio
import time

import pytest

import rpc
from rpc.degrade import OPEN, breaker_states


def state_of(name: str) -> str:
    return next(r["state"] for r in breaker_states() if r["method"] == name)


def test_a_sync_function_falls_back_to_a_function_while_open_then_recovers():
    calls = []
    healthy = False

    def cached(item: str) -> str:
        return f"cached {item}"

    @rpc.degrade.guarded(name="t.price", fallback=cached, min_calls=2, open_for=0.5, probes=1)
    def price(item: str) -> str:
        calls.append(item)
        if not healthy:
            raise ConnectionError("pricing is down")
        return f"fresh {item}"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            price("a")  # counted as INTERNAL
    assert state_of("t.price") == OPEN
    assert price("b") == "cached b" and calls == ["a", "a"]
    healthy = True
    time.sleep(0.55)
    assert price("c") == "fresh c" and state_of("t.price") == "closed"


async def test_an_async_function_with_spec_fallbacks_and_uncounted_errors():
    @rpc.degrade.guarded(name="t.lookup", fallback={"action": "value", "value": -1},
                         error_count=1, error_ratio=None, on_error=True)  # fmt: skip
    async def lookup(key: str) -> int:
        await asyncio.sleep(0)
        if key == "bad":
            raise rpc.BadRequestError("no such key")  # not counted: the caller's fault
        if key == "down":
            raise rpc.UnavailableError("store down")
        return len(key)

    with pytest.raises(rpc.BadRequestError):
        await lookup("bad")
    assert await lookup("abc") == 3
    assert await lookup("down") == -1  # on_error: the failure itself falls back
    assert await lookup("abc") == -1 and state_of("t.lookup") == OPEN

    @rpc.degrade.guarded(name="t.strict", error_count=1, error_ratio=None, open_for=60)
    async def strict() -> None:
        raise rpc.TimeoutError("slow")

    with pytest.raises(rpc.TimeoutError):
        await strict()
    with pytest.raises(rpc.UnavailableError, match=r"t\.strict is degraded"):
        await strict()


def test_bad_rules_fail_at_decoration():
    with pytest.raises(rpc.BadRequestError, match=r"breaker\.window"):
        rpc.degrade.guarded(window=float("nan"))
