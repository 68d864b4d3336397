"""Balancers checked statistically on a double invoker, weights from a registry document, and
the warm-up ramp."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import pytest

import rpc
from rpc.balance import ConsistentHashBalancer, WeightsDocument, WeightTable
from rpc.balance._adaptive import DECAY_S
from rpc.cluster import MockInvoker
from rpc.registry import connect

A, B, C = "10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"


def shares(peers: list[str]) -> dict[str, float]:
    counts = Counter(peers)
    return {peer: n / len(peers) for peer, n in counts.items()}


def weighted(*pairs: tuple[str, int]) -> rpc.StaticDirectory:
    directory = rpc.StaticDirectory([address for address, _ in pairs])
    directory._all = tuple(rpc.Provider(a, w) for a, w in pairs)  # a fixed list with weights
    return directory


async def calls(client: rpc.AsyncClient, n: int, *args: Any) -> None:
    for _ in range(n):
        await client.generic("svc", "m", *args)


@pytest.mark.parametrize("name", ["random", "round_robin"])
async def test_weighted_balancers_follow_the_weights(name):
    mock = MockInvoker(lambda inv: None)
    client = rpc.AsyncClient(weighted((A, 300), (B, 100)), invoker=mock, balancer=name)
    await calls(client, 4000)
    share = shares(mock.peers())[A]
    # 0.75 expected; 4000 draws: 5 standard deviations (0.0068) is 0.034.
    assert abs(share - 0.75) < 0.035, share
    if name == "round_robin":  # smooth: exact, and never more than 3 of A in a row
        assert share == 0.75 and "A" * 4 not in "".join(
            "A" if p == A else "B" for p in mock.peers()
        )


async def slow_a(inv: rpc.Invocation) -> None:
    await asyncio.sleep(0.05 if inv.peer == A else 0.001)


@pytest.mark.parametrize("name", ["least_active", "ewma", "p2c"])
@pytest.mark.parametrize("governed", [False, True], ids=["plain", "cap+breaker"])
async def test_adaptive_balancers_send_less_to_a_slow_provider(name, governed):
    mock = MockInvoker(slow_a)
    client = rpc.AsyncClient([A, B], invoker=mock, balancer=name)
    if governed:  # a failfast call with nothing in between would run in one frame: not these
        client.configure("svc", max_inflight=100, breaker={"min_calls": 1000})

    async def worker() -> None:
        await calls(client, 40)

    await asyncio.gather(*(worker() for _ in range(8)))
    share = shares(mock.peers())
    assert share.get(B, 0) > 0.65, share  # A answers 50x slower


async def test_p2c_avoids_a_provider_that_fails():
    def flaky(inv: rpc.Invocation) -> None:
        if inv.peer == A:
            raise rpc.InternalError("bug")

    mock = MockInvoker(flaky)
    client = rpc.AsyncClient([A, B, C], invoker=mock, balancer="p2c")
    for _ in range(600):
        with contextlib.suppress(rpc.RpcError):
            await client.generic("svc", "m")
    assert shares(mock.peers()[200:]).get(A, 0) < 0.15


async def test_p2c_does_not_take_a_provider_that_fails_fast_for_the_fastest():
    async def answer(inv: rpc.Invocation) -> None:
        if inv.peer == A:
            raise rpc.InternalError("fails at once")
        await asyncio.sleep(0.005)  # the healthy ones take 5 ms

    mock = MockInvoker(answer)
    client = rpc.AsyncClient([A, B, C], invoker=mock, balancer="p2c")
    for _ in range(150):
        with contextlib.suppress(rpc.RpcError):
            await client.generic("svc", "m")
    assert shares(mock.peers()[50:]).get(A, 0) < 0.1


@pytest.mark.parametrize("kind", ["p2c", "ewma"])
def test_a_shunned_provider_is_tried_again_once_its_failures_are_old(kind: str):
    from rpc.balance import EwmaBalancer, P2CBalancer

    balancer = P2CBalancer() if kind == "p2c" else EwmaBalancer()
    providers = [rpc.Provider(A), rpc.Provider(B)]
    for _ in range(20):
        balancer.finished(A, 0.0001, True)
        balancer.finished(B, 0.002, False)
    inv = rpc.Invocation("svc", "m", ())
    assert [balancer.select(providers, inv).address for _ in range(50)].count(A) == 0
    balancer.stats[A].updated -= 20 * DECAY_S  # B kept serving; nothing called A since
    assert [balancer.select(providers, inv).address for _ in range(200)].count(A) > 40


async def test_sticky_keeps_one_provider_until_it_leaves():
    mock = MockInvoker(lambda inv: None)
    client = rpc.AsyncClient([A, B, C], invoker=mock, balancer="sticky")
    await calls(client, 50)
    assert len(set(mock.peers())) == 1
    mock.down = {mock.peers()[0]}  # its link is in backoff: the cluster leaves it out
    await calls(client, 20)
    assert len(set(mock.peers()[50:])) == 1 and mock.peers()[50] != mock.peers()[0]


def test_consistent_hash_moves_only_the_keys_of_the_provider_that_left():
    everyone = [rpc.Provider(f"10.0.1.{i}:7001") for i in range(10)]
    keys = [f"user-{i}" for i in range(5000)]

    def owners(providers: list[rpc.Provider]) -> list[str]:
        balancer = ConsistentHashBalancer()
        return [balancer.select(providers, rpc.Invocation("s", "m", (k,))).address for k in keys]

    before = owners(everyone)
    load = Counter(before)
    assert max(load.values()) / min(load.values()) < 1.6  # 160 points each spread the keys
    kept_shares = []
    for leaving in everyone:
        after = owners([p for p in everyone if p is not leaving])
        kept = [b == a for b, a in zip(before, after, strict=True)]
        assert all(k for k, b in zip(kept, before, strict=True) if b != leaving.address)
        kept_shares.append(sum(kept) / len(keys))
    # Only the leaver's keys move: on average exactly 1 in 10, the worst case a little more.
    assert sum(kept_shares) / len(kept_shares) >= 0.9 - 1e-9
    assert min(kept_shares) >= 0.87, kept_shares


async def test_consistent_hash_keys_on_the_chosen_arguments():
    mock = MockInvoker(lambda inv: None)
    client = rpc.AsyncClient(
        [A, B, C], invoker=mock, balancer="consistent_hash", governance={"hash_arguments": [1]}
    )
    for user in range(30):
        for request in range(3):
            await client.generic("svc", "m", f"req-{request}", f"user-{user}")
    by_user: dict[str, set[str]] = {}
    for call in mock.calls:
        by_user.setdefault(call.args[1], set()).add(call.peer)
    assert all(len(peers) == 1 for peers in by_user.values())
    assert len({next(iter(p)) for p in by_user.values()}) == 3


def test_warm_up_ramps_a_new_provider_in():
    table = WeightTable()
    now = time.time()
    providers = (
        rpc.Provider(A, 100, start_time=now - 600),
        rpc.Provider(B, 100, start_time=now - 15),
    )
    weights = {p.address: p.weight for p in table.apply("svc", providers, warmup=60)}
    assert weights[A] == 100 and 20 <= weights[B] <= 30  # 15 s into a 60 s ramp: a quarter
    assert table.apply("svc", providers, warmup=0) is providers


def test_the_weights_document_format():
    full = {
        "schema": 1,
        "source": "pipeline.latency",
        "computed_at_us": 1764150000123456,
        "weights": {A: {"weight": 100, "source": "p99", "updated_us": 1}, B: 40},
    }
    doc = WeightsDocument.parse(full, version=7)
    assert doc.version == 7 and doc.source == "pipeline.latency"
    assert doc.factor(A) == 100 and doc.factor(B) == 40 and doc.factor(C) == 100
    assert WeightsDocument.parse(doc.to_dict()).weights == doc.weights
    assert WeightsDocument.parse({A: 100, B: 1}).factor(B) == 1  # the shorthand
    for bad in (
        {A: -1},
        {A: True},
        {"nohost": 1},
        {"weights": {A: {"weigth": 1}}},
        {"weights": {}, "schema": 2},
        {"weights": {}, "extra": 1},
        {"weights": {A: 10**9}},
        [1, 2],
    ):
        with pytest.raises(rpc.BadRequestError, match="weight"):
            WeightsDocument.parse(bad)


async def test_weights_written_to_the_registry_move_the_split_within_a_second(make_server):
    registry = connect("memory://weights-test")
    a, b = await make_server(), await make_server()
    client = rpc.AsyncClient([a.address, b.address], registry=registry, injvm=False)
    seen: list[str] = []
    decided: list[tuple[str, dict[str, Any]]] = []  # the events of each attempt

    async def spy(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        seen.append(inv.peer)
        result = await call_next(inv)
        decided.extend(inv.events or ())
        return result

    client.add_interceptor(spy)
    echo = client.proxy("test.Echo")
    for _ in range(200):
        await echo.echo(1)
    assert abs(shares(seen)[a.address] - 0.5) < 0.05
    assert decided == []
    written = time.monotonic()
    await asyncio.to_thread(
        registry.put_config, "governance/test.Echo/weights", {a.address: 100, b.address: 1}
    )
    while True:
        seen.clear()
        for _ in range(202):
            await echo.echo(1)
        share = shares(seen).get(a.address, 0)
        if abs(share - 100 / 101) <= 0.05 or time.monotonic() - written > 1.0:
            break
    assert abs(share - 100 / 101) <= 0.05, share
    assert time.monotonic() - written <= 1.5
    assert client.cluster.counters[("test.Echo", "weights.applied")] >= 1
    # the first attempt balanced by the new weights says so (an event on its CLIENT span)
    assert [name for name, _ in decided] == ["weights.applied"]
    assert decided[0][1]["version"] >= 1
    await client.close()
    registry.close()
