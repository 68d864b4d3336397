"""The consumer's guards, in-process: the disk cache and the empty-push protection."""

from __future__ import annotations

import socket

from rpc.registry import MemoryRegistry, RegistryDirectory, ServiceInstance

from .conftest import wait_for


def test_a_consumer_starts_from_its_disk_cache(tmp_path):
    registry = MemoryRegistry()
    registry.register(ServiceInstance("svc", "127.0.0.1:7001", weight=30))
    first = RegistryDirectory(registry, cache_dir=tmp_path)
    assert [p.address for p in first.providers("svc")] == ["127.0.0.1:7001"]
    first.close()
    # A new process whose registry knows nothing (it is down): the cache answers.
    later = RegistryDirectory(MemoryRegistry.__new__(Unreachable), cache_dir=tmp_path)
    assert [(p.address, p.weight) for p in later.providers("svc")] == [("127.0.0.1:7001", 30)]


class Unreachable(MemoryRegistry):
    def subscribe(self, service, listener):  # the registry is down: no push at all
        return lambda: None


class Pusher:
    """A registry whose pushes the test makes by hand."""

    def subscribe(self, service, listener):
        self.push = listener
        listener([])
        return lambda: None


def test_an_empty_push_waits_for_the_link_check():
    with socket.socket() as alive:
        alive.bind(("127.0.0.1", 0))
        alive.listen()
        live = ServiceInstance("svc", f"127.0.0.1:{alive.getsockname()[1]}")
        with socket.socket() as gone:
            gone.bind(("127.0.0.1", 0))
            dead = ServiceInstance("svc", f"127.0.0.1:{gone.getsockname()[1]}")  # never listens
        registry = Pusher()
        directory = RegistryDirectory(registry, probe_interval=0.05, probe_timeout=0.2)
        views = []
        directory.subscribe("svc", lambda found: views.append([p.address for p in found]))
        registry.push([live, dead])
        registry.push([])  # as after a session expiry: the registry forgot both
        wait_for(lambda: views[-1] == [live.address], 3)  # the dead one goes, the live stays
        assert [p.address for p in directory.providers("svc")] == [live.address]
        registry.push([live])  # a real list ends the hold
        registry.push([])
        assert [p.address for p in directory.providers("svc")] == [live.address]
    wait_for(lambda: directory.providers("svc") == (), 3)  # confirmed gone: now applied
    assert [] not in views[1:-1]  # after the first (nothing yet), never empty until confirmed
    directory.close()
