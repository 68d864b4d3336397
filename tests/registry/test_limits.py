"""What one caller may cost everyone else: metadata bounds, quotas, and watches that one
service's size never breaks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import rpc
from rpc.registry import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_STRING_LENGTH,
    Quotas,
    ServiceInstance,
    connect,
)

from .conftest import InProcess, ZooKeeperBackend, free_port, instance, wait_for

EXHAUSTED = "RESOURCE_EXHAUSTED"


async def test_metadata_limits_are_named_in_the_refusal(inproc: InProcess) -> None:
    server = await inproc.start()
    provider = inproc.raw(server, "provider-token")
    session = await provider.session()
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(MAX_METADATA_DEPTH):
        deep = {"n": deep}
    cases = {
        str(MAX_METADATA_BYTES): {f"k{i}": "v" * 1000 for i in range(9)},
        str(MAX_METADATA_DEPTH): deep,
        str(MAX_METADATA_KEYS): {f"k{i}": 1 for i in range(MAX_METADATA_KEYS + 1)},
        str(MAX_METADATA_KEY_LENGTH): {"k" * (MAX_METADATA_KEY_LENGTH + 1): 1},
        str(MAX_METADATA_STRING_LENGTH): {"k": "v" * (MAX_METADATA_STRING_LENGTH + 1)},
    }
    for limit, metadata in cases.items():
        try:
            await provider.call("register", session, instance(metadata=metadata))
            raise AssertionError(f"metadata past the {limit} limit was accepted")
        except Exception as err:
            assert getattr(err, "code", None) == "BAD_REQUEST" and limit in str(err), err


async def test_quotas_per_credential_and_per_service(inproc: InProcess) -> None:
    quotas = Quotas(sessions_per_credential=2, registrations_per_credential=3,
                    instances_per_service=4, watches_per_credential=1)  # fmt: skip
    server = await inproc.start(quotas=quotas)
    provider, admin = inproc.raw(server, "provider-token"), inproc.raw(server, "admin-token")
    one, two = await provider.session(), await provider.session()
    assert await provider.code("open_session", 1.0, "third") == EXHAUSTED
    # Registrations count over all the credential's sessions; re-registering is free.
    for session, port in ((one, 1), (one, 2), (two, 3)):
        assert await provider.code("register", session, instance(address=f"h:{port}")) == "OK"
    assert await provider.code("register", two, instance(address="h:1", weight=5)) == "OK"
    assert await provider.code("register", two, instance(address="h:4")) == EXHAUSTED
    assert await provider.code("add_consumer", two, {"service": "t.Svc", "id": "c"}) == EXHAUSTED
    # Another credential is not held back by this one's quota ...
    mine = await admin.session()
    assert await admin.code("register", mine, instance(address="h:5")) == "OK"
    # ... but a service lists at most ``instances_per_service``.
    assert await admin.code("register", mine, instance(address="h:6")) == EXHAUSTED
    assert await admin.code("register", mine, instance("b.Svc", "h:6")) == "OK"
    # Freeing one makes room again.
    await provider.call("unregister", one, "t.Svc", "h:1#1.0#")
    assert await provider.code("register", two, instance(address="h:4")) == "OK"
    await provider.call("close_session", one)
    assert await provider.code("open_session", 1.0, "again") == "OK"
    # One long poll per credential here; the second is refused while the first waits.
    reader = inproc.raw(server, "reader-token")
    epoch = (await reader.call("watch", "", 0, 0.0))["epoch"]
    revision = (await reader.call("watch", "", 0, 0.0))["revision"]
    waiting = asyncio.create_task(reader.call("watch", epoch, revision, 5.0))
    await asyncio.sleep(0.2)
    assert await reader.code("watch", epoch, revision, 5.0) == EXHAUSTED
    assert await admin.code("watch", epoch, revision, 0.0) == "OK"
    waiting.cancel()


class Latest:
    """The last list pushed per service."""

    def __init__(self) -> None:
        self.lists: dict[str, list[Any]] = {}
        self.lock = threading.Lock()

    def listener(self, service: str) -> Any:
        def push(found: list[Any]) -> None:
            with self.lock:
                self.lists[service] = found

        return push

    def count(self, service: str) -> int:
        with self.lock:
            return len(self.lists.get(service, []))


async def test_a_large_service_never_stalls_the_watch_of_others(inproc: InProcess) -> None:
    """Three services together larger than a frame (16 MiB), each within the limits: a
    consumer watching them and a small one gets every update, the small one's too."""
    port = free_port()
    server = await inproc.start(port=port)
    provider = inproc.raw(server, "provider-token")
    session = await provider.session(interval=120.0)
    metadata = {f"k{i}": "x" * 1000 for i in range(8)}  # ~8 KB, just within the limit
    big, per_service = ["big.A", "big.B", "big.C"], 720  # 3 x 720 x ~8.2 KB > 16 MiB
    work = [instance(name, f"10.0.{n // 250}.{n % 250 + 1}:7001", metadata=metadata)
            for name in big for n in range(per_service)]  # fmt: skip
    for start in range(0, len(work), 200):
        batch = work[start : start + 200]
        await asyncio.gather(*(provider.call("register", session, i) for i in batch))
    await server.stop(0.2)
    # Subscribing while the registry is down: the first poll after it is back reloads
    # every watched service at once.
    consumer = connect(f"callscope://reader-token@127.0.0.1:{port}?timeout=5&heartbeat=1")
    try:
        latest = Latest()
        for name in [*big, "small.Svc"]:
            await asyncio.to_thread(consumer.subscribe, name, latest.listener(name))
        await inproc.start(port=port)
        await asyncio.to_thread(
            wait_for, lambda: all(latest.count(n) == per_service for n in big), 30, 0.1
        )
        await provider.call("register", session, instance("small.Svc", "10.1.0.1:7001"))
        await asyncio.to_thread(wait_for, lambda: latest.count("small.Svc") == 1, 10, 0.05)
    finally:
        await asyncio.to_thread(consumer.close)


@pytest.mark.zookeeper
def test_zookeeper_bounds_instances_per_service(zookeeper_hosts, closing, monkeypatch) -> None:
    monkeypatch.setattr("rpc.registry._zookeeper.MAX_INSTANCES_PER_SERVICE", 2)
    zk = ZooKeeperBackend(zookeeper_hosts)
    registry = closing(connect(zk.url("admin")))
    first, second = ServiceInstance("z.Svc", "h:1"), ServiceInstance("z.Svc", "h:2")
    registry.register(first)
    registry.register(second)
    with pytest.raises(rpc.ResourceExhaustedError, match="per-service limit"):
        registry.register(ServiceInstance("z.Svc", "h:3"))
    registry.register(ServiceInstance("z.Svc", "h:2", weight=5))  # already listed: replaced
    registry.unregister(first)
    registry.register(ServiceInstance("z.Svc", "h:3"))
    assert sorted(i.address for i in registry.lookup("z.Svc")) == ["h:2", "h:3"]


async def test_unsubscribing_frees_the_consumer_entry(inproc: InProcess) -> None:
    server = await inproc.start(quotas=Quotas(registrations_per_credential=2))
    url = f"callscope://reader-token@{server.address}?heartbeat=1"
    reader = connect(url)
    tenant = connect(url.replace("reader-token", "tenant-b-token"))
    try:
        for first, second in (("s.A", "s.B"), ("s.C", "s.D")):
            stops = [await asyncio.to_thread(reader.subscribe, n, lambda _: None)
                     for n in (first, second)]  # fmt: skip
            listed = await asyncio.to_thread(reader.consumers)
            assert sorted(c.service for c in listed) == [first, second]
            for stop in stops:
                stop()
            await asyncio.to_thread(wait_for, lambda: not reader.consumers(), 5)
        with pytest.raises(rpc.PermissionDeniedError):
            await asyncio.to_thread(tenant.subscribe, "s.A", lambda _: None)
        assert await asyncio.to_thread(tenant.consumers) == []
    finally:
        await asyncio.to_thread(reader.close)
        await asyncio.to_thread(tenant.close)


async def test_listing_documents_larger_than_a_frame_together(inproc: InProcess) -> None:
    """20 documents of ~900 KB (each within the 1 MiB limit, 18 MB together) list in pages."""
    server = await inproc.start()
    admin = inproc.raw(server, "admin-token")
    for n in range(20):
        await admin.call("put_config", f"big/doc{n:02d}", {"blob": "x" * 900_000})
    await admin.call("put_config", "small/doc", {"v": 1})
    registry = connect(f"callscope://admin-token@{server.address}?timeout=10")
    try:
        docs = await asyncio.to_thread(registry.list_config, "")
        assert [d.key for d in docs] == [f"big/doc{n:02d}" for n in range(20)] + ["small/doc"]
        assert [d.key for d in await asyncio.to_thread(registry.list_config, "small/")] == [
            "small/doc"
        ]
    finally:
        await asyncio.to_thread(registry.close)


async def test_configuration_documents_count_against_their_writer(inproc: InProcess) -> None:
    quotas = Quotas(documents_per_credential=3, document_bytes_per_credential=1000)
    server = await inproc.start(quotas=quotas)
    tenant, admin = inproc.raw(server, "tenant-b-token"), inproc.raw(server, "admin-token")
    for name in ("a", "b", "c"):
        assert await tenant.code("put_config", f"b/{name}", {"v": 1}) == "OK"
    assert await tenant.code("put_config", "b/d", {"v": 1}) == EXHAUSTED
    assert await tenant.code("put_config", "b/a", {"v": "x" * 500}) == "OK"  # rewrite: same count
    assert await tenant.code("put_config", "b/b", {"v": "x" * 500}) == EXHAUSTED  # 1000 bytes
    # Another credential is not held back by this one's share ...
    assert await admin.code("put_config", "b/other", {"v": 1}) == "OK"
    # ... and what it overwrites moves to its share, freeing the tenant's.
    assert await admin.code("put_config", "b/a", {"v": 2}) == "OK"
    assert await tenant.code("put_config", "b/d", {"v": 1}) == "OK"
    await tenant.call("delete_config", "b/d")
    assert await tenant.code("put_config", "b/e", {"v": "x" * 900}) == "OK"
