"""The ZooKeeper backend's watches and first connection, against the real ZooKeeper."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any
from urllib.parse import quote

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from rpc.registry import RegistryDirectory, ServiceInstance, connect
from tests.collector.tcp_proxy import TcpProxy

from .conftest import ZooKeeperBackend, wait_for

pytestmark = pytest.mark.zookeeper
SERVICE = "zk.Watched"


def addresses(found: list[Any]) -> list[str]:
    return sorted(i.address for i in found)


def test_a_subscription_survives_its_providers_folder_deleted_and_created_again(
    zookeeper_hosts, closing
):
    zk = ZooKeeperBackend(zookeeper_hosts)
    provider = closing(connect(zk.url("provider")))
    consumer = closing(connect(zk.url("reader")))  # the periodic check (30 s) stays out of it
    provider.register(ServiceInstance(SERVICE, "127.0.0.1:7001"))
    pushes: list[list[str]] = []
    consumer.subscribe(SERVICE, lambda found: pushes.append(addresses(found)))
    assert pushes == [["127.0.0.1:7001"]]
    # An administrator's clean-up (or a restored snapshot): the folder goes, then comes back.
    provider.client.delete(f"{zk.root}/services/{SERVICE}/providers", recursive=True)
    wait_for(lambda: pushes[-1] == [], 5)
    provider.register(ServiceInstance(SERVICE, "127.0.0.1:7002"))
    wait_for(lambda: pushes[-1] == ["127.0.0.1:7002"], 5)
    assert [i.address for i in consumer.lookup(SERVICE)] == ["127.0.0.1:7002"]


def test_the_periodic_check_heals_a_missed_change(zookeeper_hosts, closing):
    zk = ZooKeeperBackend(zookeeper_hosts)
    provider = closing(connect(zk.url("provider")))
    consumer = closing(connect(zk.url("reader") + "&check_interval=0.3"))
    provider.register(ServiceInstance(SERVICE, "127.0.0.1:7001"))
    pushes: list[list[str]] = []
    consumer.subscribe(SERVICE, lambda found: pushes.append(addresses(found)))
    # A node the consumer may not read yet: its watch fires, the read fails, the change is
    # missed. Granting the read later is no event a watch hears of.
    hidden = ServiceInstance(SERVICE, "127.0.0.1:7002")
    path = f"{zk.root}/services/{SERVICE}/providers/{quote(hidden.id, safe='')}"
    provider.client.create(path, json.dumps(hidden.to_dict()).encode(), ephemeral=True,
                           acl=[make_digest_acl("admin", "admin-pw", all=True)])  # fmt: skip
    time.sleep(0.5)
    assert pushes[-1] == ["127.0.0.1:7001"]
    provider.client.set_acls(path, OPEN_ACL_UNSAFE)
    wait_for(lambda: pushes[-1] == ["127.0.0.1:7001", "127.0.0.1:7002"], 5)


class Outage:
    """ZooKeeper as one client sees it: down (a port bound, not listening) until ``end()``
    puts a proxy to the real one on that port."""

    def __init__(self, zookeeper_hosts: str) -> None:
        host, port = zookeeper_hosts.rsplit(":", 1)
        self._down = socket.socket()
        self._down.bind(("127.0.0.1", 0))
        self._proxy = TcpProxy((host, int(port)))
        self._proxy.port = self._down.getsockname()[1]
        self.hosts = f"127.0.0.1:{self._proxy.port}"

    def end(self) -> None:
        self._down.close()
        self._proxy.start()

    def close(self) -> None:
        self._down.close()
        self._proxy.stop()


def test_a_consumer_calls_from_its_cache_at_once_while_zookeeper_is_down(
    zookeeper_hosts, closing, tmp_path
):
    zk = ZooKeeperBackend(zookeeper_hosts)
    provider = closing(connect(zk.url("provider")))
    provider.register(ServiceInstance(SERVICE, "127.0.0.1:7001"))
    first = closing(RegistryDirectory(closing(connect(zk.url("reader"))), cache_dir=tmp_path))
    assert [i.address for i in first.instances(SERVICE)] == ["127.0.0.1:7001"]
    outage = closing(Outage(zookeeper_hosts))
    started = time.monotonic()
    url = zk.url("reader").replace(zookeeper_hosts, outage.hosts)
    late = closing(RegistryDirectory(closing(connect(url)), cache_dir=tmp_path))
    assert [i.address for i in late.instances(SERVICE)] == ["127.0.0.1:7001"]
    took = time.monotonic() - started
    assert took < 2.0, f"{took:.2f}s before the cache answered (connect_timeout is 5 s)"
    assert not late.registry.client.connected
    outage.end()  # back: the consumer connects in the background and follows ZooKeeper
    provider.register(ServiceInstance(SERVICE, "127.0.0.1:7002"))
    wait_for(lambda: addresses(late.instances(SERVICE)) == ["127.0.0.1:7001",
                                                            "127.0.0.1:7002"], 10)  # fmt: skip


def test_a_document_watched_while_zookeeper_is_down_arrives_when_it_is_back(
    zookeeper_hosts, closing
):
    zk = ZooKeeperBackend(zookeeper_hosts)
    key = f"governance/{SERVICE}/routing"
    closing(connect(zk.url("admin"))).put_config(key, {"rules": ["zone = a"]})
    outage = closing(Outage(zookeeper_hosts))
    consumer = closing(connect(zk.url("reader").replace(zookeeper_hosts, outage.hosts)))
    pushed: list[Any] = []
    watching = threading.Thread(target=consumer.watch_config, args=(key, pushed.append),
                                daemon=True)  # fmt: skip
    watching.start()
    watching.join(2.0)
    assert not watching.is_alive(), "watch_config blocks while ZooKeeper is down"
    assert pushed == []
    outage.end()
    wait_for(lambda: pushed and pushed[-1].value == {"rules": ["zone = a"]}, 10)
