"""Transport behaviour over real sockets: deadlines, heartbeats, reconnects,
graceful shutdown, multiplexing, limits and TLS."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import pytest

import rpc

from .conftest import Echo

QUICK = rpc.Heartbeat(interval=0.1, missed=3)


async def test_deadline_travels_to_the_provider_which_abandons_the_work(make_server, make_client):
    seen = []

    async def watch(inv: rpc.Invocation, call_next):
        seen.append(inv.remaining())
        return await call_next(inv)

    service = Echo()
    server = await make_server(service, interceptors=[watch])
    echo = make_client([server.address]).proxy("test.Echo", timeout=0.2)
    start = time.monotonic()
    with pytest.raises(rpc.TimeoutError):
        await echo.sleep(2.0)
    assert time.monotonic() - start < 0.6
    assert 0.05 < seen[0] <= 0.2
    for _ in range(50):  # the provider cancels the handler at the deadline
        if service.cancelled:
            break
        await asyncio.sleep(0.02)
    assert service.cancelled == 1 and service.finished == 0
    assert server.inflight == 0


async def test_sync_work_queued_past_its_deadline_never_starts(make_server, make_client):
    calls = []

    class Slow:
        def work(self, n: int) -> int:
            calls.append(n)
            time.sleep(0.3)
            return n

    server = await make_server(Slow(), workers=1)
    slow = make_client([server.address]).proxy("Slow", timeout=0.2)
    results = await asyncio.gather(*(slow.work(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, rpc.TimeoutError) for r in results)
    await asyncio.sleep(0.5)
    assert calls == [0]  # the two queued calls were abandoned, not run


async def test_per_call_timeout_none_waits(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address], timeout=0.05).proxy("test.Echo", timeout=None)
    assert await echo.sleep(0.15) == 0.15


async def test_client_heartbeat_detects_a_silent_peer(make_client):
    """A peer that accepts the connection and then says nothing is dropped."""
    writers = []

    async def silent(reader, writer):
        writers.append(writer)
        await asyncio.sleep(10)

    silent_server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = silent_server.sockets[0].getsockname()[1]
    try:
        client = make_client([f"127.0.0.1:{port}"], heartbeat=QUICK, timeout=None)
        start = time.monotonic()
        with pytest.raises(rpc.UnavailableError, match="lost"):
            await client.proxy("test.Echo").echo(1)
        assert 0.25 <= time.monotonic() - start < 1.5
    finally:
        for writer in writers:
            writer.close()
        silent_server.close()
        await silent_server.wait_closed()


async def test_server_heartbeat_drops_a_silent_client(make_server):
    server = await make_server(heartbeat=QUICK)
    host, port = server.address.split(":")
    start = time.monotonic()  # the server has heard nothing since the connection
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        await asyncio.sleep(0.05)
        assert len(server._connections) == 1
        pings = await asyncio.wait_for(reader.read(), 2)  # returns at EOF: the server hung up
        assert 0.25 <= time.monotonic() - start < 1.5
        assert pings and len(pings) % 22 == 0 and pings[:2] == b"\xca\x5c"
        await asyncio.sleep(0.05)
        assert not server._connections
    finally:
        writer.close()


async def test_idle_links_stay_up_when_both_sides_answer_heartbeats(make_server, make_client):
    server = await make_server(heartbeat=QUICK)
    client = make_client([server.address], heartbeat=QUICK)
    echo = client.proxy("test.Echo")
    assert await echo.echo(1) == 1
    conn = client._channels[server.address].conn
    await asyncio.sleep(0.8)  # eight intervals without a call
    assert not conn.closed
    assert await echo.echo(2) == 2
    assert client._channels[server.address].conn is conn


async def test_reconnects_after_the_server_restarts(make_server, make_client):
    server = await make_server()
    port = server.port
    client = make_client([server.address], backoff=rpc.Backoff(base=0.05, maximum=0.2))
    echo = client.proxy("test.Echo")
    assert await echo.echo("before") == "before"
    await server.stop()
    with pytest.raises(rpc.UnavailableError):
        await echo.echo("while down")
    await make_server(port=port)
    deadline = time.monotonic() + 3
    while True:
        try:
            assert await echo.echo("after") == "after"
            break
        except rpc.UnavailableError:
            assert time.monotonic() < deadline, "client never reconnected"
            await asyncio.sleep(0.05)


async def test_graceful_shutdown_loses_no_accepted_call(make_server, make_client):
    service = Echo()
    server = await make_server(service)
    client = make_client([server.address])
    echo = client.proxy("test.Echo")
    inflight = [asyncio.ensure_future(echo.sleep(0.3)) for _ in range(50)]
    while server.inflight < 50:
        await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(server.stop(grace=5))
    await asyncio.sleep(0.05)
    with pytest.raises(rpc.UnavailableError):  # no new calls once draining started
        await echo.echo("late")
    assert await asyncio.gather(*inflight) == [0.3] * 50
    await stopping
    assert service.finished == 50 and service.cancelled == 0


async def test_a_thousand_concurrent_calls_share_one_connection(make_server, make_client):
    server = await make_server()
    client = make_client([server.address])
    echo = client.proxy("test.Echo")
    results = await asyncio.gather(*(echo.echo(i) for i in range(1000)))
    assert results == list(range(1000))
    assert len(client._channels) == 1 and len(server._connections) == 1


async def test_oversized_frame_closes_only_that_connection(make_server, make_client, caplog):
    limits = rpc.Limits(max_frame_size=4096, max_header_size=1024)
    server = await make_server(limits=limits)
    good = make_client([server.address]).proxy("test.Echo")
    bad = make_client([server.address]).proxy("test.Echo")
    assert await good.echo("hi") == "hi"
    with (
        caplog.at_level(logging.WARNING, logger="callscope.rpc"),
        pytest.raises(rpc.UnavailableError, match="lost"),
    ):
        await bad.echo(b"x" * 10_000)
    assert "exceeds the limit" in caplog.text
    assert await good.echo("still served") == "still served"


async def test_too_many_attachments_is_a_bad_request(make_server, make_client):
    server = await make_server(limits=rpc.Limits(max_attachments=2))
    client = make_client([server.address])
    many = client.proxy("test.Echo", attachments={"a": 1, "b": 2, "c": 3})
    with pytest.raises(rpc.BadRequestError, match="at most 2"):
        await many.echo(1)
    assert await client.proxy("test.Echo", attachments={"a": 1}).echo(2) == 2


@pytest.fixture(scope="module")
def tls_contexts():
    import trustme  # a dev dependency: certificates for the TLS tests

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


async def test_closing_a_tls_client_waits_until_its_connections_are_gone(make_server, tls_contexts):
    # A TLS close is a round trip (close_notify); a client that returned before it ended
    # left transports open, and the sync client's loop then failed to close (EBUSY).
    server_ctx, client_ctx = tls_contexts
    server = await make_server(ssl=server_ctx)
    client = rpc.AsyncClient([server.address], ssl=client_ctx, injvm=False)
    assert await client.proxy("test.Echo").echo(1) == 1
    connections = [channel.conn for channel in client._channels.values()]
    assert connections and all(conn is not None for conn in connections)
    await client.close()
    assert all(conn.closed_future.done() for conn in connections)


async def test_tls_with_token(make_server, make_client, tls_contexts):
    server_ctx, client_ctx = tls_contexts
    server = await make_server(ssl=server_ctx, tokens={"s3cret": "svc"})
    echo = make_client([server.address], ssl=client_ctx, token="s3cret").proxy("test.Echo")
    assert await echo.echo(b"over tls") == b"over tls"
    plain = make_client([server.address], connect_timeout=1.0, timeout=1.0)
    with pytest.raises((rpc.UnavailableError, rpc.TimeoutError)):
        await plain.proxy("test.Echo").echo(1)
    untrusted = make_client([server.address], ssl=ssl.create_default_context(), token="s3cret")
    with pytest.raises(rpc.UnavailableError, match="cannot connect"):
        await untrusted.proxy("test.Echo").echo(1)
