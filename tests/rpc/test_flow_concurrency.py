"""Per-service bulkheads over real sockets: slots, queue, shedding, deadlines, live limits."""

from __future__ import annotations

import asyncio

import pytest

import rpc
from rpc.flow import ConcurrencyLimit

from .conftest import Echo


@rpc.service("test.Other")
class Other:
    async def ping(self) -> str:
        return "pong"


async def _until(check, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never came true"
        await asyncio.sleep(0.01)


async def test_a_service_runs_its_limit_queues_the_next_and_sheds_the_rest(
    make_server, make_client
):
    service = Echo()
    server = await make_server(service, Other())
    server.limit("test.Echo", ConcurrencyLimit(max_concurrent=2, max_queue=2))
    client = make_client([server.address])
    echo = client.proxy("test.Echo", timeout=10)
    calls = [asyncio.ensure_future(echo.sleep(0.3)) for _ in range(4)]
    await _until(lambda: server.inflight == 4)
    head = server.concurrency.bulkheads["test.Echo"]
    assert (head.running, head.queued) == (2, 2)
    with pytest.raises(rpc.BusyError, match=r"test\.Echo is busy: 2 running, 2 queued"):
        await echo.echo("one too many")
    assert await client.proxy("test.Other").ping() == "pong"  # its own bulkhead: unaffected
    assert await asyncio.gather(*calls) == [0.3] * 4
    assert service.finished == 4 and server.inflight == 0
    assert (head.running, head.queued, head.shed) == (0, 0, 1)


async def test_queued_calls_past_their_deadline_free_their_place(make_server, make_client):
    server = await make_server(concurrency=ConcurrencyLimit(max_concurrent=1, max_queue=3))
    echo = make_client([server.address]).proxy("test.Echo")
    blocker = asyncio.ensure_future(echo.sleep(1.5))
    await _until(lambda: server.inflight == 1)
    short = make_client([server.address]).proxy("test.Echo", timeout=0.05)
    head = server.concurrency.bulkheads["test.Echo"]
    for _ in range(3):  # three rounds: each fills the queue, each expires and frees it
        results = await asyncio.gather(*(short.echo(i) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, rpc.TimeoutError) for r in results), results
        # The client gave up at its deadline; the provider's own (from arrival) comes a
        # moment later and frees the places.
        await _until(lambda: head.queued == 0)
        assert server.inflight == 1
    assert head.queued == 0 and head.shed == 0
    assert await blocker == 1.5
    await _until(lambda: server.inflight == 0)
    assert await echo.echo("after") == "after"


async def test_overflow_answers_the_configured_default(make_server, make_client):
    server = await make_server()
    server.limit(
        "test.Echo", ConcurrencyLimit(max_concurrent=1, max_queue=0, overflow_value="later")
    )
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    blocker = asyncio.ensure_future(echo.sleep(0.3))
    await _until(lambda: server.inflight == 1)
    assert await echo.echo("now") == "later"
    assert await blocker == 0.3
    assert await echo.echo("now") == "now"


async def test_raising_a_limit_live_wakes_the_queue(make_server, make_client):
    server = await make_server(concurrency=ConcurrencyLimit(max_concurrent=1, max_queue=10))
    echo = make_client([server.address]).proxy("test.Echo", timeout=10)
    calls = [asyncio.ensure_future(echo.sleep(0.4)) for _ in range(4)]
    await _until(lambda: server.inflight == 4)
    started = asyncio.get_running_loop().time()
    server.limit("test.Echo", ConcurrencyLimit(max_concurrent=4, max_queue=10))
    assert await asyncio.gather(*calls) == [0.4] * 4
    assert asyncio.get_running_loop().time() - started < 1.0  # not 4 x 0.4 s one after another


async def test_the_server_wide_ceiling_counts_every_service(make_server, make_client):
    server = await make_server(Echo(), Other(), max_inflight=2)
    client = make_client([server.address])
    slow = [asyncio.ensure_future(client.proxy("test.Echo").sleep(0.3)) for _ in range(2)]
    await _until(lambda: server.inflight == 2)
    with pytest.raises(rpc.BusyError, match="limit 2"):
        await client.proxy("test.Other").ping()
    await asyncio.gather(*slow)


async def test_in_process_calls_share_the_bulkhead():
    server = rpc.Server(concurrency=ConcurrencyLimit(max_concurrent=1, max_queue=1))
    server.export(Echo())
    await server.start()
    client = rpc.AsyncClient([server.address], injvm=True)
    try:
        echo = client.proxy("test.Echo", timeout=5)
        calls = [asyncio.ensure_future(echo.sleep(0.2)) for _ in range(2)]
        await _until(lambda: server.inflight == 2)
        with pytest.raises(rpc.BusyError):
            await echo.echo(1)
        assert await asyncio.gather(*calls) == [0.2, 0.2]
        short = client.proxy("test.Echo", timeout=0.05)
        blocker = asyncio.ensure_future(echo.sleep(0.3))
        await _until(lambda: server.inflight == 1)
        with pytest.raises(rpc.TimeoutError):
            await short.echo(2)  # queued, expires, gives its place back
        await blocker
        assert server.inflight == 0 and server.concurrency.bulkheads["test.Echo"].queued == 0
    finally:
        await client.close()
        await server.stop(grace=1.0)


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_queue": -1}, "max_queue"),
        ({"max_concurrent": 1.5}, "max_concurrent"),
        ({"overflow": "drop"}, "overflow"),
        ({"burst": 1}, "unknown"),
    ],
)
def test_limits_are_validated(doc, message):
    with pytest.raises(ValueError, match=message):
        ConcurrencyLimit.from_dict(doc)


async def test_a_consumer_caps_its_own_calls_in_flight_per_service(make_server, make_client):
    server = await make_server(Echo(), Other())
    client = make_client([server.address])
    client.configure("test.Echo", max_inflight=2)
    echo = client.proxy("test.Echo", timeout=5)
    slow = [asyncio.ensure_future(echo.sleep(0.3)) for _ in range(2)]
    await _until(lambda: server.inflight == 2)
    with pytest.raises(rpc.ResourceExhaustedError, match="max_inflight = 2"):
        await echo.echo(1)
    assert await client.proxy("test.Other").ping() == "pong"  # another service: no cap
    assert await asyncio.gather(*slow) == [0.3, 0.3]
    assert await echo.echo(2) == 2  # room again
    assert client.cluster.counters[("test.Echo", "flow.rejected")] == 1
    assert server.inflight == 0


def test_the_consumer_cap_is_validated():
    with pytest.raises(rpc.BadRequestError, match="max_inflight"):
        rpc.config.Settings().merged({"max_inflight": 0})


async def test_a_waiter_cancelled_as_a_slot_frees_gives_its_place_back_once():
    from rpc.flow import Bulkhead

    head = Bulkhead("s", ConcurrencyLimit(max_concurrent=1, max_queue=2))
    assert head.enter() is True
    assert head.enter() is False and head.enter() is False
    first = asyncio.ensure_future(head.wait())
    second = asyncio.ensure_future(head.wait())
    await asyncio.sleep(0)
    first.cancel()  # its waiter is cancelled; the task has not yet seen it ...
    head.leave()  # ... when the running call ends: the slot skips it, goes to `second`
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled() and second.done() and not second.cancelled()
    assert (head.running, head.queued) == (1, 0)
    head.leave()
    assert (head.running, head.queued) == (0, 0)


async def test_the_consumer_caps_count_returns_to_zero_after_failed_cancelled_and_refused_calls():
    from rpc.cluster import MockInvoker

    gate = asyncio.Event()

    async def answer(inv: rpc.Invocation) -> object:
        if inv.args[0] == "fail":
            raise rpc.BusyError("no")
        if inv.args[0] == "hang":
            await gate.wait()
        return inv.args[0]

    client = rpc.AsyncClient(["10.0.0.1:1"], invoker=MockInvoker(answer), injvm=False)
    client.configure("test.Echo", max_inflight=2, breaker={"min_calls": 100})
    echo = client.proxy("test.Echo").echo
    assert await echo("ok") == "ok" and client.cluster.inflight("test.Echo") == 0
    with pytest.raises(rpc.BusyError):
        await echo("fail")
    assert client.cluster.inflight("test.Echo") == 0
    hung = [asyncio.ensure_future(echo("hang")) for _ in range(2)]
    await _until(lambda: client.cluster.inflight("test.Echo") == 2)
    with pytest.raises(rpc.ResourceExhaustedError, match="max_inflight = 2"):
        await echo("ok")
    client.configure("test.Echo", max_inflight=3)  # new settings: the calls in flight still count
    third = asyncio.ensure_future(echo("hang"))
    await _until(lambda: client.cluster.inflight("test.Echo") == 3)
    with pytest.raises(rpc.ResourceExhaustedError, match="max_inflight = 3"):
        await echo("ok")
    hung[0].cancel()
    await asyncio.gather(hung[0], return_exceptions=True)
    assert client.cluster.inflight("test.Echo") == 2
    gate.set()
    assert await asyncio.gather(hung[1], third) == ["hang", "hang"]
    assert client.cluster.inflight("test.Echo") == 0
    assert client.cluster.counters[("test.Echo", "flow.rejected")] == 2
    await client.close()
