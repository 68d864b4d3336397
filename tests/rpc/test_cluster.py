"""The cluster layer on a double invoker: no sockets, no sleeps (rpc.cluster.MockInvoker)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rpc
from rpc.cluster import ClusterInvoker, MockInvoker

ADDRESSES = ["10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"]


def answer_peer(inv: rpc.Invocation) -> str:
    return inv.peer


def mock_client(handler=answer_peer, addresses=ADDRESSES, **options: Any):
    mock = MockInvoker(handler)
    return rpc.AsyncClient(addresses, invoker=mock, injvm=False, **options), mock


async def test_failfast_picks_one_provider_per_call_through_the_balancer():
    client, mock = mock_client()
    echo = client.proxy("svc")
    answers = [await echo.m(i) for i in range(6)]
    assert answers == mock.peers() and sorted(answers) == sorted(ADDRESSES * 2)
    assert {c.attempt for c in mock.calls} == {1} and mock.calls[0].args == (0,)
    await client.close()
    assert mock.closed


async def test_interceptors_run_per_attempt_and_see_the_chosen_provider():
    seen = []

    async def spy(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        seen.append((inv.peer, inv.attempt))
        inv.attachments["seen-by"] = "spy"
        return await call_next(inv)

    client, mock = mock_client(interceptors=[spy], addresses=ADDRESSES[:1])
    assert await client.generic("svc", "m") == ADDRESSES[0]
    assert seen == [(ADDRESSES[0], 1)] and mock.calls[0].attachments == {"seen-by": "spy"}


async def test_errors_and_missing_providers():
    def refuse(inv: rpc.Invocation) -> None:
        raise rpc.BusyError("full")

    client, _ = mock_client(refuse)
    with pytest.raises(rpc.BusyError):
        await client.generic("svc", "m")
    empty, mock = mock_client(addresses=[])
    with pytest.raises(rpc.UnavailableError, match="no provider for 'svc'"):
        await empty.generic("svc", "m")
    assert mock.calls == []
    await client.close()
    with pytest.raises(rpc.UnavailableError, match="closed"):
        await client.generic("svc", "m")


async def test_providers_in_backoff_are_skipped_while_others_answer():
    client, mock = mock_client()
    mock.down = {ADDRESSES[0], ADDRESSES[1]}
    assert {await client.generic("svc", "m") for _ in range(5)} == {ADDRESSES[2]}
    mock.down = set(ADDRESSES)  # none usable: try them anyway rather than fail unasked
    assert await client.generic("svc", "m") in ADDRESSES


async def test_broadcast_and_forking_are_strategies_with_an_attempt_each():
    def flaky(inv: rpc.Invocation) -> str:
        if inv.peer == ADDRESSES[1]:
            raise rpc.UnavailableError("down")
        inv.attachments["mine"] = inv.peer  # each attempt writes its own attachments
        return inv.peer

    client, mock = mock_client(flaky)
    outcomes = await client.broadcast("svc", "m", 1)
    assert [o.peer for o in outcomes] == ADDRESSES
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].error.code == "UNAVAILABLE"
    assert [c.attachments for c in mock.calls if c.peer != ADDRESSES[1]] == [{}, {}]

    mock.calls.clear()
    assert await client.forking("svc", "m", forks=3) in (ADDRESSES[0], ADDRESSES[2])
    assert sorted(c.attempt for c in mock.calls) == [1, 2, 3]
    with pytest.raises(rpc.BadRequestError, match="forks"):
        await client.forking("svc", "m", forks=0)


async def test_forking_waits_for_the_first_success():
    async def slow_first(inv: rpc.Invocation) -> str:
        await asyncio.sleep(0 if inv.peer == ADDRESSES[2] else 5)
        return inv.peer

    client, _ = mock_client(slow_first)
    assert await asyncio.wait_for(client.forking("svc", "m", forks=3), 2) == ADDRESSES[2]


async def test_a_user_strategy_is_chosen_by_name():
    @rpc.extension("clusters", "last_provider")
    class LastProvider:
        def __init__(self, settings: rpc.config.Settings) -> None:
            self.settings = settings

        def invoke(self, inv: rpc.Invocation, cluster: ClusterInvoker) -> Any:
            return cluster.attempt(inv, cluster.providers(inv)[-1])

    client, _ = mock_client(cluster="last_provider")
    assert await client.generic("svc", "m") == ADDRESSES[-1]
    with pytest.raises(rpc.ExtensionError, match="no cluster named 'nope'"):
        rpc.AsyncClient(ADDRESSES, cluster="nope")
    rpc.extension_point("clusters").unregister("last_provider")


def test_the_blocking_client_is_a_facade_over_the_same_path():
    mock = MockInvoker(answer_peer)
    with rpc.Client(ADDRESSES[:1], invoker=mock, injvm=False) as client:
        echo = client.proxy("svc")
        assert echo.m(1) == ADDRESSES[0]
        assert echo.m.future(2).result(timeout=5) == ADDRESSES[0]
        echo.m.oneway(3)
        assert client.generic("svc", "m") == ADDRESSES[0]
        assert [o.value for o in client.broadcast("svc", "m")] == ADDRESSES[:1]
    assert [c.args for c in mock.calls[:3]] == [(1,), (2,), (3,)] and mock.closed
