"""Weights written to the registry reach a consumer's balancer: on every backend, a
``100:1`` document moves the split of calls to within 5% of that in under a second."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import rpc
from tests.rpc.conftest import Echo, make_server  # noqa: F401  (the RPC fixtures, reused)


async def test_weights_written_to_the_registry_move_the_split_within_a_second(
    open_registry,
    make_server,  # noqa: F811
):
    writer = await asyncio.to_thread(open_registry)
    reader = await asyncio.to_thread(open_registry)
    a, b = await make_server(Echo()), await make_server(Echo())
    client = rpc.AsyncClient([a.address, b.address], registry=reader, injvm=False)
    seen: list[str] = []

    async def spy(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        seen.append(inv.peer)
        return await call_next(inv)

    client.add_interceptor(spy)
    echo = client.proxy("test.Echo")
    for _ in range(100):
        await echo.echo(1)
    assert abs(Counter(seen)[a.address] / len(seen) - 0.5) < 0.05
    await asyncio.sleep(0.5)  # the consumer's watches start in the background
    document = {
        "schema": 1,
        "source": "test",
        "computed_at_us": int(time.time() * 1e6),
        "weights": {a.address: {"weight": 100, "source": "test"}, b.address: 1},
    }
    written = time.monotonic()
    await asyncio.to_thread(writer.put_config, "governance/test.Echo/weights", document)
    share = 0.0
    while time.monotonic() - written < 1.0:
        seen.clear()
        for _ in range(101):
            await echo.echo(1)
        share = Counter(seen)[a.address] / len(seen)
        if abs(share - 100 / 101) <= 0.05:
            break
    took = time.monotonic() - written
    assert abs(share - 100 / 101) <= 0.05 and took <= 1.5, (share, took)
    await client.close()
