"""ZooKeeper smoke test: an ephemeral znode created with kazoo is watched and deleted."""

from __future__ import annotations

import threading
import uuid

import pytest

pytestmark = pytest.mark.zookeeper


def test_ephemeral_znode_watch(zookeeper_hosts: str) -> None:
    from kazoo.client import KazooClient

    client = KazooClient(hosts=zookeeper_hosts, timeout=10)
    client.start(timeout=30)
    path = f"/callscope-test/{uuid.uuid4().hex[:8]}/provider"
    events: list[str] = []
    deleted = threading.Event()
    try:
        client.create(path, b"10.0.0.7:7001", ephemeral=True, makepath=True)

        @client.DataWatch(path)
        def watch(data: bytes | None, stat: object, event: object = None) -> None:
            events.append("data" if data is not None else "gone")
            if data is None:
                deleted.set()

        assert client.get(path)[0] == b"10.0.0.7:7001"
        assert client.get(path)[1].ephemeralOwner == client.client_id[0]
        client.delete(path)
        assert deleted.wait(10), f"the watch never saw the delete: {events}"
        assert client.exists(path) is None
        assert events == ["data", "gone"]
    finally:
        client.delete(path.rsplit("/", 2)[0], recursive=True)
        client.stop()
        client.close()
