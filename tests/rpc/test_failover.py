"""Strategies that try again (failover, failback), failsafe, and the retry budget -- on a double
invoker, so every decision is checked without sockets or sleeps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rpc
from rpc.cluster import MockInvoker, RetryBudget

ADDRESSES = ["10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"]


def client_on(handler, *, addresses=ADDRESSES, **governance: Any):
    mock = MockInvoker(handler)
    client = rpc.AsyncClient(addresses, invoker=mock, injvm=False, governance=governance)
    return client, mock


def down(*peers: str, error=rpc.UnavailableError):
    def handler(inv: rpc.Invocation) -> str:
        if inv.peer in peers:
            raise error(f"{inv.peer} is down")
        return inv.peer

    return handler


async def test_failover_retries_on_providers_not_tried_yet():
    client, mock = client_on(
        down(*ADDRESSES[:2]), cluster="failover", balancer="random", retry_budget=1000
    )
    for _ in range(20):
        assert await client.generic("svc", "m") == ADDRESSES[2]
    # Never the same provider twice within one call, attempts numbered 1, 2, 3.
    call: list[Any] = []
    for attempted in mock.calls:
        if attempted.attempt == 1:
            call = []
        assert attempted.peer not in call
        call.append(attempted.peer)
    assert max(c.attempt for c in mock.calls) <= 3


async def test_failover_stops_after_the_configured_retries():
    client, mock = client_on(down(*ADDRESSES), cluster="failover", retries=1)
    with pytest.raises(rpc.UnavailableError):
        await client.generic("svc", "m")
    assert [c.attempt for c in mock.calls] == [1, 2]
    assert client.cluster.counters[("svc", "retry")] == 1
    assert client.cluster.counters[("svc", "retry.stop")] == 1


async def test_no_retry_for_errors_that_are_not_retriable():
    client, mock = client_on(down(*ADDRESSES, error=rpc.NotFoundError), cluster="failover")
    with pytest.raises(rpc.NotFoundError):
        await client.generic("svc", "m")
    assert len(mock.calls) == 1


async def test_a_call_in_doubt_is_retried_only_when_idempotent():
    client, mock = client_on(down(ADDRESSES[0], error=rpc.TimeoutError), addresses=ADDRESSES[:2])
    client.configure("svc", cluster="failover")
    client.configure("svc", "read", idempotent=True)
    with pytest.raises(rpc.TimeoutError):
        for _ in range(2):  # round robin: one of the two calls starts on the slow provider
            await client.generic("svc", "write")
    assert [c.attempt for c in mock.calls if c.method == "write"][-1] == 1
    assert {await client.generic("svc", "read") for _ in range(4)} == {ADDRESSES[1]}

    def lost(inv: rpc.Invocation) -> str:
        if inv.peer == ADDRESSES[0]:
            err = rpc.UnavailableError("connection lost")
            err.in_doubt = True  # what the socket invoker marks after writing the request
            raise err
        return inv.peer

    client2, _ = client_on(lost, addresses=ADDRESSES[:2], cluster="failover")
    outcomes = [await _outcome(client2.generic("svc", "write")) for _ in range(4)]
    assert "UNAVAILABLE" in outcomes and ADDRESSES[1] in outcomes


async def _outcome(call: Any) -> str:
    try:
        return await call
    except rpc.RpcError as err:
        return err.code


async def test_the_retry_budget_caps_attempts_under_a_full_outage():
    client, mock = client_on(down(*ADDRESSES), cluster="failover", retries=2, retry_budget=10)
    for _ in range(50):
        with pytest.raises(rpc.UnavailableError):
            await client.generic("svc", "m")
    retries = sum(1 for c in mock.calls if c.attempt > 1)
    assert retries <= 5, retries  # tokens fall from 10 to 5, then only first attempts
    assert len(mock.calls) <= 50 + 5
    assert client.cluster.counters[("svc", "retry.stop")] >= 45


def test_retry_budget_refills_with_successes():
    budget = RetryBudget(4, 0.5)
    assert budget.failed() and not budget.failed()  # 3 > 2, then 2 is not > 2
    for _ in range(3):
        budget.succeeded()  # 2 -> 3.5
    assert budget.failed()  # 2.5 > 2
    assert not budget.failed()


async def test_decisions_are_events_on_the_failed_attempt():
    seen: list[tuple[int, str, list[Any]]] = []

    async def recorder(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        before = len(inv.events or [])
        try:
            return await call_next(inv)
        finally:
            seen.append((inv.attempt, inv.peer, (inv.events or [])[before:]))

    client, _ = client_on(down(ADDRESSES[0]), addresses=ADDRESSES[:2], cluster="failover")
    client.add_interceptor(recorder)
    await client.generic("svc", "m")
    await client.generic("svc", "m")
    failed = [s for s in seen if s[1] == ADDRESSES[0]]
    assert failed and failed[0][2] == [
        ("retry", {"action": "switch", "next_attempt": 2, "error.code": "UNAVAILABLE"})
    ]
    assert (2, ADDRESSES[1], []) in seen


async def test_failback_acts_per_error_code():
    def by_method(inv: rpc.Invocation) -> str:
        if inv.method == "missing":
            raise rpc.NotFoundError("gone")
        if inv.method == "busy" and inv.attempt == 1:
            raise rpc.BusyError("try later")
        if inv.method == "bad":
            raise rpc.BadRequestError("no")
        return f"{inv.method}@{inv.peer}"

    policy = {"NOT_FOUND": "ignore", "BUSY": "retry", "*": "error"}
    client, mock = client_on(by_method, cluster="failback", failback=policy, failback_default=[])
    assert await client.generic("svc", "missing") == []
    busy = await client.generic("svc", "busy")
    busy_calls = [c for c in mock.calls if c.method == "busy"]
    assert [c.attempt for c in busy_calls] == [1, 2]
    assert busy_calls[0].peer == busy_calls[1].peer and busy.endswith(busy_calls[0].peer)
    with pytest.raises(rpc.BadRequestError):
        await client.generic("svc", "bad")
    with pytest.raises(rpc.BadRequestError, match="failback"):
        client.configure("svc", failback={"TIMEOUT": "pray"})


async def test_failsafe_swallows_the_error():
    client, mock = client_on(down(*ADDRESSES), cluster="failsafe", failback_default="none")
    assert await client.generic("svc", "m") == "none"
    assert len(mock.calls) == 1 and client.cluster.counters[("svc", "failsafe.ignore")] == 1


async def test_strategy_per_service_and_method_and_live_changes():
    client, _ = client_on(down(ADDRESSES[0]), addresses=ADDRESSES[:2])
    client.configure("svc", "safe", cluster="failover")
    results = {await _outcome(client.generic("svc", "safe")) for _ in range(4)}
    assert results == {ADDRESSES[1]}
    assert "UNAVAILABLE" in {await _outcome(client.generic("svc", "other")) for _ in range(4)}
    client.configure("svc", cluster="failover")  # now the whole service
    assert {await _outcome(client.generic("svc", "other")) for _ in range(4)} == {ADDRESSES[1]}
    assert client.cluster.settings("svc", "other").cluster == "failover"
    assert client.cluster.settings("elsewhere").cluster == "failfast"


async def test_failcache_keeps_failed_calls_across_a_restart_and_delivers_them(tmp_path):
    path = str(tmp_path / "failcache.db")
    up = {"yes": False}
    delivered: list[Any] = []

    def provider(inv: rpc.Invocation) -> str:
        if not up["yes"]:
            raise rpc.UnavailableError("down")
        delivered.append((inv.method, inv.args, inv.attempt))
        return "ok"

    settings = {"cluster": "failcache", "failcache_path": path, "failcache_period": 0.3}
    client, _ = client_on(provider, addresses=ADDRESSES[:1], **settings)
    assert await client.generic("svc", "notify", 1) is None  # queued, not failed
    assert await client.generic("svc", "notify", 2) is None
    refusing, _ = client_on(down(*ADDRESSES, error=rpc.BadRequestError), **settings)
    with pytest.raises(rpc.BadRequestError):  # not retriable: an error at once
        await refusing.generic("svc", "bad")
    await refusing.close()
    assert client.cluster.counters[("svc", "failcache.enqueue")] == 2
    await client.close()  # the consumer stops with two calls waiting

    up["yes"] = True
    restarted, _ = client_on(provider, addresses=ADDRESSES[:1], **settings)
    queue = restarted.cluster.failcache(restarted.cluster.settings("svc"))
    for _ in range(500):
        if queue.counts().get("waiting", 0) == 0:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # due entries go out only once
    assert sorted(args for _, args, _ in delivered) == [[1], [2]]
    assert {attempt for *_, attempt in delivered} == {2}
    assert restarted.cluster.counters[("svc", "failcache.delivered")] == 2
    await restarted.close()


async def test_failcache_gives_up_after_its_tries(tmp_path, caplog):
    settings = {
        "cluster": "failcache",
        "failcache_path": str(tmp_path / "fc.db"),
        "failcache_period": 0.02,
        "failcache_tries": 3,
    }
    client, mock = client_on(down(*ADDRESSES), addresses=ADDRESSES[:1], **settings)
    await client.generic("svc", "notify", "x")
    queue = client.cluster.failcache(client.cluster.settings("svc"))
    for _ in range(300):
        if queue.counts().get("failed"):
            break
        await asyncio.sleep(0.01)
    assert queue.counts() == {"failed": 1}
    assert len(mock.calls) == 3 and client.cluster.counters[("svc", "failcache.give_up")] == 1
    assert "gave up on svc/notify after 3 tries" in caplog.text
    await client.close()
