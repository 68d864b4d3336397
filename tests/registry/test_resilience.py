"""Resilience with real processes, for the embedded and the ZooKeeper backends alike.

Providers are separate processes registered through the backend; the consumer is
this process (a registry client, a :class:`RegistryDirectory`, an RPC client).
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import rpc
from rpc.registry import RegistryDirectory, connect

from .conftest import HEARTBEAT, wait_for

SERVICE = "reg.Echo"


def consumer(backend: Any, closing: Any, cache: Path | None = None, who: str = "reader") -> Any:
    url = backend.url(who) + ("&connect_timeout=0.5" if backend.name == "zookeeper" else "")
    registry = closing(connect(url))
    return closing(RegistryDirectory(registry, cache_dir=cache, probe_interval=0.2))


def listed(directory: RegistryDirectory) -> list[str]:
    return sorted(i.address for i in directory.instances(SERVICE))


async def calls(client: rpc.AsyncClient, n: int) -> list[int]:
    echo = client.proxy(SERVICE)
    return [await echo.pid() for _ in range(n)]


async def test_killed_provider_vanishes_within_the_bound(backend, providers, closing, make_client):
    a, b = providers(backend.url("provider")), providers(backend.url("provider"))
    directory = consumer(backend, closing)
    client = make_client(directory, timeout=2.0)
    wait_for(lambda: listed(directory) == sorted([a.line, b.line]), 5)
    assert set(await calls(client, 6)) == {a.pid, b.pid}
    a.kill()
    killed = time.monotonic()
    # The link, not the registry, takes A out of rotation first: at most one call finds out.
    await asyncio.sleep(0.05)
    failures = 0
    for _ in range(10):
        try:
            assert await client.proxy(SERVICE).pid() == b.pid
        except rpc.UnavailableError:
            failures += 1
    assert failures <= 1
    await asyncio.to_thread(wait_for, lambda: listed(directory) == [b.line], backend.bound + 2)
    took = time.monotonic() - killed
    assert took <= backend.bound + 0.3, f"{backend.name}: {took:.2f}s > bound {backend.bound}s"


async def test_graceful_shutdown_unregisters_before_draining(
    backend, providers, closing, make_client
):
    a, b = providers(backend.url("provider")), providers(backend.url("provider"))
    directory = consumer(backend, closing)
    client = make_client(directory, timeout=2.0)
    wait_for(lambda: listed(directory) == sorted([a.line, b.line]), 5)
    a.signal(signal.SIGTERM)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and listed(directory) != [b.line]:
        await calls(client, 2)  # no call fails while A leaves
    assert listed(directory) == [b.line]
    assert set(await calls(client, 4)) == {b.pid}


async def test_registry_outage_loses_nothing(backend, providers, closing, make_client, tmp_path):
    admin = closing(connect(backend.url("admin")))
    doc = admin.put_config(f"governance/{SERVICE}/weights", {"127.0.0.1:1": 10})
    p = providers(backend.url("provider"))
    directory = consumer(backend, closing, cache=tmp_path / "cache")
    client = make_client(directory, timeout=2.0)
    wait_for(lambda: listed(directory) == [p.line], 5)
    backend.stop()
    try:
        # A consumer that had the registry keeps calling from its last list ...
        assert set(await calls(client, 3)) == {p.pid}
        # ... and one that starts now calls from the disk cache.
        late = consumer(backend, closing, cache=tmp_path / "cache")
        assert set(await calls(make_client(late, timeout=2.0), 3)) == {p.pid}
    finally:
        backend.start()
    fresh = closing(connect(backend.url("admin")))
    assert fresh.get_config(doc.key) == doc
    took = wait_for(lambda: [i.address for i in fresh.lookup(SERVICE)] == [p.line], 10, 0.1)
    assert listed(directory) == [p.line]
    assert set(await calls(client, 3)) == {p.pid}
    print(f"{backend.name}: provider listed {took:.2f}s after the registry came back")


def test_writes_need_credentials_and_rights(backend, closing):
    key = "governance/reg.Echo/routing"
    admin = closing(connect(backend.url("admin")))
    admin.put_config(key, {"rules": ["zone = a"]})
    anonymous = closing(connect(backend.url("anonymous")))
    with pytest.raises(rpc.UnauthenticatedError):
        anonymous.put_config(key, {"rules": []})
    reader = closing(connect(backend.url("reader")))
    assert reader.get_config(key).value == {"rules": ["zone = a"]}
    with pytest.raises(rpc.PermissionDeniedError):
        reader.put_config(key, {"rules": []})
    with pytest.raises(rpc.PermissionDeniedError):
        reader.delete_config(key)
    assert admin.get_config(key).version == 1
    if backend.name == "embedded":
        provider = closing(connect(backend.url("provider")))
        with pytest.raises(rpc.PermissionDeniedError, match="config/governance"):
            provider.put_config(key, {"rules": []})
        with pytest.raises(rpc.UnauthenticatedError):
            closing(connect(backend.url("admin").replace("admin-token", "forged"))).services()


async def test_flapping_session_does_not_empty_the_list(backend, providers, closing, make_client):
    p = providers(backend.url("provider"))
    directory = consumer(backend, closing)
    views: list[list[str]] = []
    directory.subscribe(SERVICE, lambda found: views.append(sorted(x.address for x in found)))
    raw: list[int] = []
    closing(connect(backend.url("reader"))).subscribe(SERVICE, lambda found: raw.append(len(found)))
    client = make_client(directory, timeout=2.0)
    wait_for(lambda: listed(directory) == [p.line], 5)
    if backend.name == "embedded":
        p.signal(signal.SIGSTOP)  # misses heartbeats: the lease expires
        await asyncio.to_thread(wait_for, lambda: raw and raw[-1] == 0, 3 * HEARTBEAT + 2)
        p.signal(signal.SIGCONT)
    else:
        p.signal(signal.SIGUSR1)  # its session expires, as after a partition
        await asyncio.to_thread(wait_for, lambda: raw and raw[-1] == 0, 5)
    assert listed(directory) == [p.line]  # the empty push was held back
    await asyncio.to_thread(wait_for, lambda: raw[-1] == 1, 10)  # the provider re-registered
    assert [] not in views
    assert set(await calls(client, 3)) == {p.pid}
