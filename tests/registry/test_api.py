"""One conformance suite for every backend: registrations, pushes, listings, config CAS."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import rpc
from rpc.registry import ConflictError, ServiceInstance

from .conftest import wait_for


class Recorder:
    """A listener that remembers every push and lets a test wait for one."""

    def __init__(self) -> None:
        self.pushes: list[Any] = []
        self.cond = threading.Condition()

    def __call__(self, value: Any) -> None:
        with self.cond:
            self.pushes.append(value)
            self.cond.notify_all()

    def addresses(self) -> list[str]:
        return sorted(i.address for i in self.pushes[-1]) if self.pushes else []


def test_register_lookup_subscribe_unregister(open_registry):
    provider, consumer = open_registry(), open_registry()
    seen = Recorder()
    consumer.subscribe("t.Svc", seen)
    a = ServiceInstance("t.Svc", "127.0.0.1:7001", version="1.0", metadata={"zone": "a"})
    b = ServiceInstance("t.Svc", "127.0.0.1:7002", version="1.0", weight=50)
    provider.register(a)
    provider.register(b)
    wait_for(lambda: seen.addresses() == ["127.0.0.1:7001", "127.0.0.1:7002"], 5)
    found = {i.address: i for i in consumer.lookup("t.Svc")}
    assert found["127.0.0.1:7001"].metadata["zone"] == "a"
    assert found["127.0.0.1:7002"].weight == 50
    assert "t.Svc" in consumer.services()
    assert [c.service for c in consumer.consumers("t.Svc")] == ["t.Svc"]
    provider.unregister(a)
    wait_for(lambda: seen.addresses() == ["127.0.0.1:7002"], 5)
    provider.close()
    wait_for(lambda: seen.addresses() == [], 5)


def test_config_versions_compare_and_set_and_watch(open_registry):
    writer, watcher = open_registry(), open_registry()
    key = "governance/t.Svc/weights"
    docs = Recorder()
    watcher.watch_config(key, docs)
    assert writer.get_config(key) is None
    first = writer.put_config(key, {"127.0.0.1:7001": 100}, expected=0)
    assert first.version == 1
    with pytest.raises(ConflictError) as info:
        writer.put_config(key, {"127.0.0.1:7001": 1}, expected=0)
    assert info.value.code == "CONFLICT"
    second = writer.put_config(key, {"127.0.0.1:7001": 20}, expected=1)
    assert second.version == 2
    with pytest.raises(ConflictError):
        writer.put_config(key, {}, expected=1)
    wait_for(lambda: docs.pushes and docs.pushes[-1] and docs.pushes[-1].version == 2, 5)
    assert watcher.get_config(key).value == {"127.0.0.1:7001": 20}
    writer.put_config("governance/_global/cluster", {"cluster": "failover", "retries": 2})
    keys = [d.key for d in watcher.list_config("governance/")]
    assert keys == ["governance/_global/cluster", key]
    with pytest.raises(ConflictError):
        writer.delete_config(key, expected=1)
    writer.delete_config(key, expected=2)
    wait_for(lambda: docs.pushes[-1] is None, 5)
    assert writer.get_config(key) is None
    with pytest.raises(rpc.NotFoundError):
        writer.delete_config(key)


def test_malformed_documents_are_refused_before_writing(open_registry):
    registry = open_registry()
    with pytest.raises(rpc.BadRequestError, match="non-negative"):
        registry.put_config("governance/t.Svc/weights", {"127.0.0.1:1": -3})
    with pytest.raises(rpc.BadRequestError, match="config key"):
        registry.put_config("../etc/passwd", 1)
    with pytest.raises(rpc.BadRequestError, match="JSON"):
        registry.put_config("governance/t.Svc/routing", {1, 2})
    assert registry.get_config("governance/t.Svc/weights") is None
