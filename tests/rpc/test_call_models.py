"""Every call model over real sockets: sync, async, future, callback, oneway,
parallel, broadcast, forking, generic, and typed proxies with dataclasses."""

from __future__ import annotations

import asyncio
import threading

import pytest

import rpc

from .conftest import Echo, EchoApi, Point, Segment, server_in_thread

PAYLOAD = {"text": "hé", "n": 3, "raw": b"\x00\x01", "nested": [1, {"a": None}]}


async def test_async_call_round_trips_plain_data(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address]).proxy("test.Echo")
    assert await echo.echo(PAYLOAD) == PAYLOAD
    assert await echo.add(2, 3) == 5
    assert await echo.add(2, b=5) == 7
    assert await echo.echo_sync("sync handlers run in the pool") == "sync handlers run in the pool"


async def test_typed_proxy_rebuilds_dataclasses_on_both_sides(make_server, make_client):
    server = await make_server()
    shapes = make_client([server.address]).proxy("test.Echo", EchoApi)
    seg = Segment(Point(0, 0), Point(3, 4), "ab")
    assert await shapes.length(seg) == 5.0
    mirrored = await shapes.mirror(seg)
    assert mirrored == Segment(Point(3, 4), Point(0, 0), "ba")
    with pytest.raises(AttributeError):
        _ = shapes.not_in_the_interface


async def test_json_codec(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address], codec="json").proxy("test.Echo")
    assert await echo.echo({"a": [1, 2.5, "x", None]}) == {"a": [1, 2.5, "x", None]}
    with pytest.raises(rpc.BadRequestError):
        await echo.echo(b"bytes have no json form")


async def test_future_and_callback(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address]).proxy("test.Echo")
    task = echo.echo.future("later")
    assert await task == "later"
    done: asyncio.Future[tuple] = asyncio.get_running_loop().create_future()
    echo.add.callback(1, 2, on_done=lambda result, error: done.set_result((result, error)))
    assert await done == (3, None)
    failed: asyncio.Future[tuple] = asyncio.get_running_loop().create_future()
    echo.fail.callback("boom", on_done=lambda result, error: failed.set_result((result, error)))
    result, error = await failed
    assert result is None and error.code == "INTERNAL"


async def test_oneway_gets_no_response_but_is_delivered(make_server, make_client):
    service = Echo()
    service.oneway_seen = asyncio.Queue()
    server = await make_server(service)
    client = make_client([server.address])
    echo = client.proxy("test.Echo")
    assert await echo.record.oneway("fire") is None
    assert await asyncio.wait_for(service.oneway_seen.get(), 2) == "fire"
    # A failing oneway call is silent for the caller and leaves the link healthy.
    await echo.fail.oneway("ignored")
    assert await echo.echo("still fine") == "still fine"


async def test_parallel_keeps_order_and_reports_each_error(make_server, make_client):
    server = await make_server()
    client = make_client([server.address])
    calls = [
        rpc.Call("test.Echo", "sleep", (0.05,)),
        rpc.Call("test.Echo", "echo", ("a",)),
        rpc.Call("test.Echo", "add", (1, 2)),
    ]
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await client.parallel(calls) == [0.05, "a", 3]
    assert loop.time() - start < 0.5
    results = await client.parallel(
        [rpc.Call("test.Echo", "fail", ("x",)), rpc.Call("test.Echo", "echo", (1,))],
        return_exceptions=True,
    )
    assert isinstance(results[0], rpc.InternalError) and results[1] == 1


class Named:
    def __init__(self, name: str, delay: float = 0.0, fails: bool = False) -> None:
        self.name, self.delay, self.fails = name, delay, fails

    async def who(self) -> str:
        await asyncio.sleep(self.delay)
        if self.fails:
            raise rpc.UnavailableError(f"{self.name} is down for maintenance")
        return self.name


async def test_broadcast_reaches_every_provider(make_server, make_client):
    a = await make_server(Named("a"))
    b = await make_server(Named("b", fails=True))
    c = await make_server(Named("c"))
    client = make_client([a.address, b.address, c.address])
    outcomes = await client.broadcast("Named", "who")
    assert {o.peer for o in outcomes} == {a.address, b.address, c.address}
    by_peer = {o.peer: o for o in outcomes}
    assert by_peer[a.address].result() == "a" and by_peer[c.address].value == "c"
    assert not by_peer[b.address].ok and by_peer[b.address].error.code == "UNAVAILABLE"


async def test_forking_returns_the_first_success(make_server, make_client):
    slow = await make_server(Named("slow", delay=1.0))
    fast = await make_server(Named("fast", delay=0.0))
    client = make_client([slow.address, fast.address])
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await client.forking("Named", "who", forks=2) == "fast"
    assert loop.time() - start < 0.8
    broken = await make_server(Named("broken", fails=True))
    client2 = make_client([broken.address, fast.address])
    assert await client2.forking("Named", "who", forks=2) == "fast"
    only_broken = make_client([broken.address])
    with pytest.raises(rpc.UnavailableError):
        await only_broken.forking("Named", "who", forks=2)


async def test_generic_invocation_needs_no_interface(make_server, make_client):
    server = await make_server()
    client = make_client([server.address])
    seg = {"start": {"x": 0, "y": 0}, "end": {"x": 6, "y": 8}, "label": "g"}
    assert await client.generic("test.Echo", "length", seg) == 10.0
    assert await client.generic("test.Echo", "mirror", seg) == {
        "start": {"x": 6, "y": 8},
        "end": {"x": 0, "y": 0},
        "label": "g",
    }


async def test_version_and_group_select_the_export(make_server, make_client):
    @rpc.service("versioned", version="1.0")
    class V1:
        def v(self) -> str:
            return "one"

    @rpc.service("versioned", version="2.0", group="canary")
    class V2:
        def v(self) -> str:
            return "two"

    server = await make_server(V1(), V2())
    client = make_client([server.address])
    assert await client.proxy("versioned", version="1.0").v() == "one"
    assert await client.proxy("versioned", version="2.0", group="canary").v() == "two"
    with pytest.raises(rpc.NotFoundError):
        await client.proxy("versioned", version="3.0").v()


def test_blocking_client_call_models():
    with server_in_thread() as server, rpc.Client([server.address]) as client:
        echo = client.proxy("test.Echo")
        assert echo.echo("sync") == "sync"
        assert echo.add.future(4, 5).result(timeout=5) == 9
        got = threading.Event()
        seen = []
        echo.add.callback(1, 1, on_done=lambda r, e: (seen.append((r, e)), got.set()))
        assert got.wait(5) and seen == [(2, None)]
        echo.record.oneway("x")
        assert client.generic("test.Echo", "echo", [1, 2]) == [1, 2]
        assert client.parallel([rpc.Call("test.Echo", "echo", (i,)) for i in range(5)]) == list(
            range(5)
        )
        assert [o.value for o in client.broadcast("test.Echo", "whoami")] == ["echo"]
        assert client.forking("test.Echo", "whoami") == "echo"
        typed = client.proxy("test.Echo", EchoApi)
        assert typed.mirror(Segment(Point(1, 2), Point(3, 4))) == Segment(
            Point(3, 4), Point(1, 2), ""
        )
        with pytest.raises(rpc.InternalError) as info:
            echo.fail("sync boom")
        assert info.value.remote_type == "ZeroDivisionError"


async def test_blocking_call_from_the_loop_thread_is_refused():
    with server_in_thread() as server, rpc.Client([server.address]) as client:
        echo = client.proxy("test.Echo")
        errors = []

        def on_done(result, error):
            try:
                echo.echo("nested")  # would deadlock: we are on the client's loop thread
            except RuntimeError as exc:
                errors.append(exc)

        fut = echo.echo.future("x")
        fut.add_done_callback(lambda f: on_done(f.result(), None))
        fut.result(timeout=5)
        await asyncio.sleep(0.05)
        assert errors and "deadlock" in str(errors[0])
