"""Connection control over real sockets: caps in total and per client address."""

from __future__ import annotations

import asyncio

import pytest

import rpc
from rpc._frame import EVENT, FrameDecoder

from .conftest import Echo


async def _link(
    port: int, host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))


async def _refusal(reader: asyncio.StreamReader) -> dict:
    """The event a refused link gets before the provider closes it."""
    decoder = FrameDecoder()
    async with asyncio.timeout(5):
        while True:
            data = await reader.read(65536)
            assert data, "closed without telling why"
            for ftype, _flags, codec_id, _rid, header, _body in decoder.feed(data):
                if ftype == EVENT:
                    event = rpc.get_codec(codec_id).decode(header)
                    assert await reader.read() == b""  # then the link is closed
                    return event


async def _until(check, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never came true"
        await asyncio.sleep(0.01)


async def test_links_beyond_the_per_address_cap_are_told_why_and_closed(make_server, make_client):
    server = await make_server(Echo(), max_connections_per_address=2)
    held = [await _link(server.port) for _ in range(2)]
    await _until(lambda: server.connection_limits.total == 2)
    reader, writer = await _link(server.port)
    event = await _refusal(reader)
    assert event["e"] == "refused" and event["code"] == "RESOURCE_EXHAUSTED"
    assert "127.0.0.1 already has 2 connections (limit 2 per address)" in event["message"]
    writer.close()
    other_reader, other_writer = await _link(server.port, host="127.0.0.2")  # another address
    await _until(lambda: server.connection_limits.total == 3)
    # A client from the capped address is refused with the reason...
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    with pytest.raises(
        rpc.UnavailableError, match=r"refused the connection: 127\.0\.0\.1 already has 2"
    ):
        await echo.echo(1)
    # ... and served once a link from there closes; the held links were never touched.
    held[0][1].close()
    await _until(lambda: server.connection_limits.total == 2)
    for _ in range(200):  # (the client backs off after a refusal: 0.05-0.15 s, then more)
        try:
            assert await echo.echo(2) == 2
            break
        except rpc.UnavailableError:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the client was never served after room appeared")
    assert not held[1][0].at_eof() and not other_reader.at_eof()
    assert server.connection_limits.refused >= 2
    held[1][1].close()
    other_writer.close()


async def test_the_total_cap_refuses_the_excess_and_serves_the_rest(make_server, make_client):
    server = await make_server(Echo(), max_connections=3)
    clients = [make_client([server.address]).proxy("test.Echo", timeout=5) for _ in range(5)]
    results = await asyncio.gather(
        *(c.echo(i) for i, c in enumerate(clients)), return_exceptions=True
    )
    served = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(served) == 3 and len(refused) == 2, results
    for err in refused:
        assert isinstance(err, rpc.UnavailableError) and "limit 3" in err.message
    for _ in range(3):  # the admitted keep being served
        assert [await clients[i].echo(i) for i in range(5) if results[i] == i] == served
    assert server.connection_limits.total == 3 and len(server._connections) == 3


def test_connection_caps_are_validated():
    with pytest.raises(ValueError, match="max_connections"):
        rpc.Server(max_connections=0)
    with pytest.raises(ValueError, match="max_connections_per_address"):
        rpc.Server(max_connections_per_address=True)


async def test_a_consumer_keeps_the_connections_per_provider_it_was_given(make_server, make_client):
    server = await make_server(Echo())
    client = make_client([server.address], connections=3)
    echo = client.proxy("test.Echo", timeout=5)
    assert await asyncio.gather(*(echo.echo(i) for i in range(30))) == list(range(30))
    assert len(server._connections) == 3  # one pool of three links, used in turn
    assert await asyncio.gather(*(echo.echo(i) for i in range(30))) == list(range(30))
    assert len(server._connections) == 3  # ... and no more
    await client.close()
    await _until(lambda: not server._connections)
    with pytest.raises(ValueError, match="connections"):
        rpc.AsyncClient([server.address], connections=0)


async def test_a_refused_consumer_backs_off_instead_of_dialling_on_every_call(
    make_server, make_client
):
    server = await make_server(Echo(), max_connections=1)
    held = await _link(server.port)
    await _until(lambda: server.connection_limits.total == 1)
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.0
    calls = 0
    while loop.time() < end:  # a call every 10 ms for a second
        calls += 1
        with pytest.raises(rpc.UnavailableError, match="refused the connection"):
            await echo.echo(calls)
        await asyncio.sleep(0.01)
    assert calls > 20
    assert server.connection_limits.refused <= 8  # 0.1, 0.2, 0.4 ... s apart, not one a call
    held[1].close()
