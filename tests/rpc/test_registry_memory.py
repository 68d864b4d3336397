"""The in-process registry as a client's Directory: providers come and go by push."""

from __future__ import annotations

import pytest

import rpc
from rpc.registry import MemoryRegistry, RegistryDirectory, ServiceInstance

from .conftest import Echo


async def test_client_follows_registrations(make_server, make_client):
    registry = MemoryRegistry()
    directory = RegistryDirectory(registry)
    client = make_client(directory)
    echo = client.proxy("test.Echo")
    with pytest.raises(rpc.UnavailableError, match="no provider"):
        await echo.echo(1)
    a = await make_server(Echo())
    b = await make_server(Echo())
    registry.register(ServiceInstance("test.Echo", a.address))
    assert await echo.echo(1) == 1
    registry.register(ServiceInstance("test.Echo", b.address))
    peers = {o.peer for o in await client.broadcast("test.Echo", "whoami")}
    assert peers == {a.address, b.address}
    registry.unregister(ServiceInstance("test.Echo", a.address))
    assert [p.address for p in directory.providers("test.Echo")] == [b.address]
    assert registry.services() == ["test.Echo"]


def test_directory_filters_by_version_and_group_and_notifies():
    registry = MemoryRegistry()
    directory = RegistryDirectory(registry)
    seen = []
    directory.subscribe("svc", lambda providers: seen.append([p.address for p in providers]))
    registry.register(ServiceInstance("svc", "127.0.0.1:1", version="1.0"))
    registry.register(ServiceInstance("svc", "127.0.0.1:2", version="2.0", group="canary"))
    assert [p.address for p in directory.providers("svc", "1.0")] == ["127.0.0.1:1"]
    assert [p.address for p in directory.providers("svc", "2.0", "canary")] == ["127.0.0.1:2"]
    assert [p.address for p in directory.providers("svc")] == ["127.0.0.1:1"]
    assert seen[-1] == ["127.0.0.1:1"]
