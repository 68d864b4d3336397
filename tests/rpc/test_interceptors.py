"""The interceptor chains (both sides) and in-process (injvm) calls."""

from __future__ import annotations

import asyncio

import pytest

import rpc

from .conftest import Echo


class Recorder:
    """Observes every invocation and its outcome."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log = name, log

    async def __call__(self, inv: rpc.Invocation, call_next):
        self.log.append((self.name, "before", inv.role, inv.service, inv.method, inv.peer))
        try:
            result = await call_next(inv)
        except rpc.RpcError as err:
            self.log.append((self.name, "error", err.code))
            raise
        self.log.append((self.name, "after", result))
        return result


async def test_chains_run_in_order_and_see_the_invocation(make_server, make_client):
    log: list = []
    server = await make_server(interceptors=[Recorder("s1", log), Recorder("s2", log)])
    client = make_client([server.address], interceptors=[Recorder("c1", log)])
    assert await client.proxy("test.Echo").echo("x") == "x"
    assert [entry[:2] for entry in log] == [
        ("c1", "before"),
        ("s1", "before"),
        ("s2", "before"),
        ("s2", "after"),
        ("s1", "after"),
        ("c1", "after"),
    ]
    assert log[0][2:] == ("client", "test.Echo", "echo", server.address)
    assert log[1][2] == "server" and log[1][5].startswith("127.0.0.1:")
    log.clear()
    with pytest.raises(rpc.InternalError):
        await client.proxy("test.Echo").fail("bad")
    assert ("c1", "error", "INTERNAL") in log and ("s1", "error", "INTERNAL") in log


async def test_interceptors_modify_attachments_and_args(make_server, make_client):
    async def stamp(inv: rpc.Invocation, call_next):
        inv.attachments["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        inv.args = [a.upper() if isinstance(a, str) else a for a in inv.args]
        return await call_next(inv)

    seen = {}

    async def read(inv: rpc.Invocation, call_next):
        seen.update(inv.attachments)
        return await call_next(inv)

    server = await make_server(interceptors=[read])
    client = make_client([server.address], interceptors=[stamp])
    assert await client.proxy("test.Echo").echo("quiet") == "QUIET"
    assert seen["traceparent"].startswith("00-4bf92f35")


async def test_interceptors_can_short_circuit(make_server, make_client):
    async def cached(inv: rpc.Invocation, call_next):
        if inv.method == "echo":
            return "from cache"
        return await call_next(inv)

    server = await make_server()
    client = make_client([server.address], interceptors=[cached])
    assert await client.proxy("test.Echo").echo("x") == "from cache"
    assert await client.proxy("test.Echo").add(1, 1) == 2
    client2 = make_client([server.address])
    client2.add_interceptor(cached)
    assert await client2.proxy("test.Echo").echo("y") == "from cache"


async def test_injvm_calls_skip_the_socket_but_not_the_chains():
    log: list = []
    server = rpc.Server("127.0.0.1", 0, interceptors=[Recorder("server", log)])
    server.export(Echo())
    await server.start()
    try:
        client = rpc.AsyncClient(interceptors=[Recorder("client", log)])
        echo = client.proxy("test.Echo")
        assert await echo.echo({"by": "reference"}) == {"by": "reference"}
        assert log[0][5] == "injvm" and log[1][2:] == ("server", "test.Echo", "echo", "injvm")
        assert not client._channels  # no socket was opened
        with pytest.raises(rpc.TimeoutError):
            await client.proxy("test.Echo", timeout=0.05).sleep(1)
        with pytest.raises(rpc.InternalError):
            await echo.fail("local")
        assert await echo.echo_sync("pool") == "pool"
        await client.close()
        remote_only = rpc.AsyncClient(injvm=False)
        with pytest.raises(rpc.UnavailableError, match="no provider"):
            await remote_only.proxy("test.Echo").echo(1)
        await remote_only.close()
    finally:
        await server.stop()
    after = rpc.AsyncClient()
    with pytest.raises(rpc.UnavailableError):  # the export is withdrawn at stop
        await after.proxy("test.Echo").echo(1)
    await after.close()


def test_injvm_across_loops_from_the_blocking_client():
    from .conftest import server_in_thread

    with server_in_thread(injvm=True) as server, rpc.Client() as client:
        assert server.loop is not None
        assert client.proxy("test.Echo").echo("across loops") == "across loops"
        assert not client.aio._channels


async def test_invocation_events_record_governance_decisions():
    inv = rpc.Invocation("s", "m", ())
    assert inv.events is None and inv.remaining() is None
    inv.add_event("retry", attempt=2)
    assert inv.events == [("retry", {"attempt": 2})]
    await asyncio.sleep(0)


async def test_global_interceptors_join_every_later_chain(make_server, make_client):
    log: list = []
    client_side, server_side = Recorder("global-c", log), Recorder("global-s", log)
    rpc.add_global_interceptor(client_side, side="client")
    rpc.add_global_interceptor(server_side, side="server")
    try:
        server = await make_server(interceptors=[Recorder("local-s", log)])
        client = make_client([server.address])
    finally:
        rpc.remove_global_interceptor(client_side, side="client")
        rpc.remove_global_interceptor(server_side, side="server")
    assert await client.proxy("test.Echo").echo(1) == 1
    assert [e[0] for e in log if e[1] == "before"] == ["global-c", "global-s", "local-s"]
    with pytest.raises(ValueError):
        rpc.add_global_interceptor(client_side, side="both")


async def test_server_context_reaches_sync_methods_and_local_address_is_set(
    make_server, make_client
):
    import contextvars

    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
    seen_local = []

    async def tag(inv: rpc.Invocation, call_next):
        seen_local.append(inv.local)
        request_id.set(f"{inv.method}-tagged")
        return await call_next(inv)

    class Reader:
        def read(self) -> str:  # runs in a worker thread
            return request_id.get()

    server = await make_server(Reader(), interceptors=[tag])
    assert await make_client([server.address]).proxy("Reader").read() == "read-tagged"
    assert seen_local == [server.address]
