"""Admission gates over real sockets and in-process (injvm): order, refusal codes, failures."""

from __future__ import annotations

from typing import Any

import pytest

import rpc
import rpc.flow

from .conftest import Echo


class Recording:
    """A gate that records what it judged and refuses one method with a chosen error."""

    def __init__(self, name: str, seen: list[tuple[str, str, str, Any]], refuse: str = "") -> None:
        self.name, self.seen, self.refuse = name, seen, refuse

    def admit(self, service: str, method: str, principal: Any, /) -> None:
        self.seen.append((self.name, service, method, principal))
        if method == self.refuse:
            raise rpc.ResourceExhaustedError(f"{self.name} refuses {method}")


class Broken:
    def admit(self, service: str, method: str, principal: Any, /) -> None:
        raise KeyError("oops")


async def test_gates_run_in_order_after_authorization_and_refuse_with_their_code(
    make_server, make_client
):
    seen: list[tuple[str, str, str, Any]] = []
    first: rpc.flow.Gate = Recording("first", seen)
    server = await make_server(
        Echo(),
        tokens={"t": "alice"},
        authorizer=lambda who, svc, m: m != "deny",
        gates=[first],
    )
    server.add_gate(Recording("second", seen, refuse="whoami"))
    echo = make_client([server.address], token="t").proxy("test.Echo", timeout=5)
    assert await echo.echo(1) == 1
    assert seen == [
        ("first", "test.Echo", "echo", "alice"),
        ("second", "test.Echo", "echo", "alice"),
    ]
    seen.clear()
    with pytest.raises(rpc.ResourceExhaustedError, match="second refuses whoami"):
        await echo.whoami()
    with pytest.raises(rpc.PermissionDeniedError):  # refused before any gate
        await echo.deny()
    assert [name for name, *_ in seen] == ["first", "second"]
    assert server.inflight == 0  # a refused call never took a slot


async def test_a_broken_gate_refuses_as_internal_and_keeps_the_connection(
    make_server, make_client, caplog
):
    server = await make_server(Echo(), gates=[Broken()])
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    for _ in range(3):
        with pytest.raises(rpc.InternalError, match="admission gate Broken failed"):
            await echo.echo(1)
    assert "admission gate" in caplog.text
    assert len(server._connections) == 1  # the link survived every refusal
    assert server.inflight == 0


async def test_gates_guard_in_process_calls_too():
    seen: list[tuple[str, str, str, Any]] = []
    server = rpc.Server("127.0.0.1", 0, gates=[Recording("g", seen, refuse="whoami")])
    server.export(Echo())
    await server.start()
    client = rpc.AsyncClient([server.address], injvm=True)
    try:
        echo = client.proxy("test.Echo", timeout=5)
        assert await echo.echo(2) == 2
        with pytest.raises(rpc.ResourceExhaustedError):
            await echo.whoami()
        assert [m for _, _, m, _ in seen] == ["echo", "whoami"]
        assert not server._connections  # in-process: no socket was opened
    finally:
        await client.close()
        await server.stop(grace=1.0)


def test_add_gate_refuses_an_object_without_admit():
    with pytest.raises(TypeError, match="admit"):
        rpc.Server().add_gate(object())  # type: ignore[arg-type]


async def test_limiters_are_found_by_name(make_server, make_client):
    @rpc.extension("limiters", "test-deny-whoami")
    class DenyWhoami:
        def admit(self, service: str, method: str, principal: Any, /) -> None:
            if method == "whoami":
                raise rpc.BusyError("not now")

    try:
        server = await make_server(Echo())
        tiers = server.add_limiter(
            "tiers", thresholds={"cpu": [50, 90]}, limits={"critical": 1}, interval=60
        )
        assert isinstance(tiers, rpc.flow.DynamicFlow) and tiers in server.gates
        server.add_limiter("gradient", service="test.Echo", initial=5)
        assert server.concurrency.bulkhead("test.Echo").limit.max_concurrent == 5
        deny = server.add_limiter("test-deny-whoami")
        assert deny in server.gates
        echo = make_client([server.address]).proxy("test.Echo", timeout=5)
        assert await echo.echo(1) == 1
        with pytest.raises(rpc.BusyError, match="not now"):
            await echo.whoami()
        with pytest.raises(rpc.ExtensionError, match=r"no limiter named 'nope'.*gradient"):
            server.add_limiter("nope")
    finally:
        rpc.flow.LIMITERS.unregister("test-deny-whoami")
