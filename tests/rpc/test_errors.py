"""Every error code reaches the caller as an RpcError with its stable code."""

from __future__ import annotations

import asyncio

import pytest

import rpc

from .conftest import Echo


async def test_not_found_for_unknown_service_and_method(make_server, make_client):
    server = await make_server()
    client = make_client([server.address])
    with pytest.raises(rpc.NotFoundError, match="no service 'nope'"):
        await client.generic("nope", "x")
    with pytest.raises(rpc.NotFoundError, match="no method 'missing'"):
        await client.generic("test.Echo", "missing")
    with pytest.raises(rpc.NotFoundError):
        await client.generic("test.Echo", "_private")


async def test_bad_request_for_wrong_arguments(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address]).proxy("test.Echo")
    with pytest.raises(rpc.BadRequestError, match="add"):
        await echo.add()
    with pytest.raises(rpc.BadRequestError):
        await echo.add(1, 2, 3)
    with pytest.raises(rpc.BadRequestError):
        await echo.add(1, c=2)
    with pytest.raises(rpc.BadRequestError, match="Segment"):
        await echo.length("not a map")
    with pytest.raises(rpc.BadRequestError, match="cannot encode"):
        await echo.echo(object())


async def test_internal_error_carries_the_remote_type_and_message(make_server, make_client):
    class Custom(Exception):
        pass

    class Raiser:
        def custom(self) -> None:
            raise Custom("custom failure")

    server = await make_server(Echo(), Raiser())
    client = make_client([server.address])
    with pytest.raises(rpc.InternalError) as info:
        await client.proxy("test.Echo").fail("division")
    assert info.value.code == "INTERNAL"
    assert info.value.message == "division"
    assert info.value.remote_type == "ZeroDivisionError"
    assert not info.value.retriable
    with pytest.raises(rpc.InternalError) as info:
        await client.proxy("Raiser").custom()
    assert info.value.remote_type.endswith("Custom")


async def test_permission_denied_from_handler_and_interceptor(make_server, make_client):
    async def only_admins(inv: rpc.Invocation, call_next):
        if inv.method == "whoami" and inv.principal != "admin":
            raise rpc.PermissionDeniedError(f"{inv.principal} may not call whoami")
        return await call_next(inv)

    server = await make_server(
        tokens={"t-user": "user", "t-admin": "admin"}, interceptors=[only_admins]
    )
    user = make_client([server.address], token="t-user").proxy("test.Echo")
    admin = make_client([server.address], token="t-admin").proxy("test.Echo")
    with pytest.raises(rpc.PermissionDeniedError, match="user may not"):
        await user.whoami()
    assert await admin.whoami() == "echo"
    with pytest.raises(rpc.PermissionDeniedError, match="not for you"):
        await admin.deny()


async def test_unauthenticated_without_or_with_a_bad_token(make_server, make_client):
    server = await make_server(tokens={"secret": "alice"})
    with pytest.raises(rpc.UnauthenticatedError, match="token"):
        await make_client([server.address]).proxy("test.Echo").echo(1)
    with pytest.raises(rpc.UnauthenticatedError, match="refused the token"):
        await make_client([server.address], token="wrong").proxy("test.Echo").echo(1)
    assert await make_client([server.address], token="secret").proxy("test.Echo").echo(1) == 1


async def test_busy_when_the_provider_is_at_its_limit(make_server, make_client):
    server = await make_server(max_inflight=2)
    echo = make_client([server.address]).proxy("test.Echo")
    slow = [asyncio.ensure_future(echo.sleep(0.3)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(rpc.BusyError) as info:
        await echo.echo("one too many")
    assert info.value.retriable
    assert await asyncio.gather(*slow) == [0.3, 0.3]
    assert await echo.echo("room again") == "room again"


async def test_unavailable_without_providers_or_when_refused(make_server, make_client):
    with pytest.raises(rpc.UnavailableError, match="no provider"):
        await make_client([]).proxy("test.Echo").echo(1)
    server = await make_server()
    address = server.address
    await server.stop()
    with pytest.raises(rpc.UnavailableError, match="cannot connect") as info:
        await make_client([address]).proxy("test.Echo").echo(1)
    assert info.value.retriable


async def test_timeout_code(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address], timeout=0.1).proxy("test.Echo")
    with pytest.raises(rpc.TimeoutError) as info:
        await echo.sleep(1.0)
    assert info.value.code == "TIMEOUT" and info.value.retriable


async def test_cancelled_code_reaches_a_callback(make_server, make_client):
    server = await make_server()
    echo = make_client([server.address]).proxy("test.Echo")
    seen: asyncio.Future = asyncio.get_running_loop().create_future()
    task = echo.sleep.callback(5.0, on_done=lambda r, e: seen.set_result(e))
    await asyncio.sleep(0.05)
    task.cancel()
    err = await asyncio.wait_for(seen, 2)
    assert isinstance(err, rpc.CancelledError) and err.code == "CANCELLED"


def test_wire_form_of_errors_round_trips_and_unknown_codes_survive():
    for cls in (
        rpc.TimeoutError,
        rpc.UnavailableError,
        rpc.BusyError,
        rpc.NotFoundError,
        rpc.BadRequestError,
        rpc.UnauthenticatedError,
        rpc.PermissionDeniedError,
        rpc.CancelledError,
        rpc.ProtocolError,
        rpc.InternalError,
    ):
        err = rpc.RpcError.from_dict(cls("m", remote_type="T").to_dict())
        assert type(err) is cls and err.message == "m" and err.remote_type == "T"
        assert rpc.error_for_code(cls.code) is cls
    future = rpc.RpcError.from_dict({"code": "RATE_LIMITED", "message": "slow down"})
    assert type(future) is rpc.RpcError and future.code == "RATE_LIMITED"
    assert rpc.RpcError.from_dict("garbage").code == "INTERNAL"
