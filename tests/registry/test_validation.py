"""Hostile and careless input at the registry's edge: BAD_REQUEST, and nothing changes.

Raw calls reach the embedded server's methods with any value a client can encode;
the same instances through the ``Registry`` API are refused by every backend.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

import rpc
from rpc.registry import (
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEYS,
    EmbeddedRegistry,
    ServiceInstance,
    connect,
)

from .conftest import InProcess, ZooKeeperBackend, instance, wait_for

BAD = "BAD_REQUEST"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


BAD_ADDRESSES = [
    "not-a-host:99999", "127.0.0.1:0", "evil host:80", "127.0.0.1:\u0668\u0660",
    "127.0.0.1:\uff18\uff10",
    "127.0.0.1:-1", "127.0.0.1", ":80", "[::1:80", "[zz::1]:80", "host_name:80", "-a.b:80",
    "ex\u00e4mple.com:80", "a" * 300 + ":80", "h:80\n", 5, None, ["h", 80],
]  # fmt: skip

BAD_FIELDS: list[dict[str, Any]] = [
    {"weight": math.nan}, {"weight": math.inf}, {"weight": -1}, {"weight": 2_000_000},
    {"weight": 1.5}, {"weight": "5"}, {"weight": True},
    {"start_time": math.nan}, {"start_time": math.inf}, {"start_time": -5.0},
    {"start_time": time.time() + 10 * 86_400}, {"start_time": "now"},
    {"pid": -1}, {"pid": "1"}, {"pid": 2.0}, {"pid": 1 << 40},
    {"service": 5}, {"service": "a/b"}, {"service": ""},
    {"version": 5}, {"version": "a#b"}, {"group": ["g"]}, {"version": "v" * 300},
    {"metadata": "zone=a"}, {"metadata": ["zone"]},
    {"metadata": {"k": b"\x00bytes"}},
    {"metadata": {"k": math.nan}},
    {"metadata": {1: "int key"}},
    {"metadata": {"": "empty key"}},
    {"metadata": {"k" * 200: 1}},
    {"metadata": {"k": "v" * 2000}},
    {"metadata": {"k": 1 << 70}},
    {"metadata": nested(MAX_METADATA_DEPTH + 1)},
    {"metadata": {f"k{i}": i for i in range(MAX_METADATA_KEYS + 1)}},
    {"metadata": {f"k{i}": {"a": 1, "b": 2} for i in range(30)}},  # 90 keys over two levels
    {"metadata": {"zones": [str(i) for i in range(MAX_METADATA_KEYS)]}},  # 65 entries
    {"metadata": {f"k{i}": "v" * 900 for i in range(10)}},  # ~9 KB > MAX_METADATA_BYTES
]  # fmt: skip


async def test_bad_instances_are_refused_and_never_listed(inproc: InProcess) -> None:
    server = await inproc.start()
    provider = inproc.raw(server, "provider-token")
    session = await provider.session()
    refused = []
    for address in BAD_ADDRESSES:
        refused.append(
            (address, await provider.code("register", session, instance(address=address)))
        )
    for fields in BAD_FIELDS:
        refused.append((fields, await provider.code("register", session, instance(**fields))))
    for bad in ("not a map", 5, None, [], {"address": "h:1"}, {"service": "t.Svc"}):
        refused.append((bad, await provider.code("register", session, bad)))
    assert [(what, code) for what, code in refused if code != BAD] == []
    assert await provider.call("lookup", "t.Svc") == []
    assert await provider.call("services") == []
    # Valid edge cases pass: an IPv6 literal, a DNS name, the limits themselves.
    good = [instance(address="[::1]:7001"), instance(address="svc-1.example.com:65535"),
            instance(address="10.0.0.7:1", metadata=nested(MAX_METADATA_DEPTH)),
            instance(address="h:2", metadata={f"k{i}": "v" * 1000 for i in range(8)})]  # fmt: skip
    for item in good:
        assert await provider.code("register", session, item) == "OK", item["address"]
    assert len(await provider.call("lookup", "t.Svc")) == len(good)


async def test_memory_and_sqlite_never_diverge(inproc: InProcess) -> None:
    """A refused registration (bytes in metadata) is neither listed now nor after a restart."""
    server = await inproc.start()
    provider = inproc.raw(server, "provider-token")
    session = await provider.session()
    await provider.call("register", session, instance(address="127.0.0.1:7001"))
    bad = instance(address="127.0.0.1:7002", metadata={"blob": b"\x00\xff"})
    assert await provider.code("register", session, bad) == BAD
    consumer = {"service": "t.Svc", "id": "c", "metadata": {"b": b"x"}}
    assert await provider.code("add_consumer", session, consumer) == BAD
    before = [i["address"] for i in await provider.call("lookup", "t.Svc")]
    port = int(server.address.rpartition(":")[2])
    await server.stop(0.2)
    again = await inproc.start(port=port)  # the same database
    reader = inproc.raw(again, "reader-token")
    after = [i["address"] for i in await reader.call("lookup", "t.Svc")]
    assert before == after == ["127.0.0.1:7001"]
    assert await reader.call("consumers", "t.Svc") == []


async def test_wrong_types_and_numbers_are_bad_requests(inproc: InProcess) -> None:
    server = await inproc.start()
    admin = inproc.raw(server, "admin-token")
    session = await admin.session()
    await admin.call("put_config", "t/doc", {"v": 1})
    epoch = (await admin.call("watch", "", 0, 0.0))["epoch"]
    calls: list[tuple[Any, ...]] = [
        ("keepalive", None), ("keepalive", 5), ("keepalive", ["x"]), ("keepalive", ""),
        ("close_session", {"id": session}), ("open_session", 1.0, 5),
        ("unregister", session, 5, "x"), ("unregister", session, "t.Svc", None),
        ("lookup", 5), ("lookup", ["t.Svc"]), ("lookup", "a/b"), ("consumers", 5),
        ("add_consumer", session, {"service": "t.Svc", "id": 5}),
        ("add_consumer", session, {"service": "t.Svc", "id": "c", "metadata": "x"}),
        ("remove_consumer", session, "t.Svc", None), ("remove_consumer", session, 1, "c"),
        ("get_config", 5), ("get_config", "../x"), ("delete_config", None),
        ("list_config", 5), ("list_config", None),
        ("put_config", "t/doc", {"v": 2}, math.nan), ("put_config", "t/doc", {"v": 2}, "1"),
        ("put_config", "t/doc", {"v": 2}, -1), ("put_config", "t/doc", {"v": 2}, 1.5),
        ("put_config", "t/doc", {"v": 2}, True), ("put_config", "t/doc", {"v": math.inf}),
        ("put_config", "t/doc", b"bytes"), ("delete_config", "t/doc", math.nan),
        ("delete_config", "t/doc", "1"),
        ("watch", 5, 0, 0.0), ("watch", epoch, "x", 0.0), ("watch", epoch, -1, 0.0),
        ("watch", epoch, math.nan, 0.0), ("watch", epoch, 0, math.nan),
        ("watch", epoch, 0, math.inf), ("watch", epoch, 0, -1.0),
        ("register",), ("register", session, instance(), "extra"),
    ]  # fmt: skip
    codes = [(c, await admin.code(*c)) for c in calls]
    assert [(c, code) for c, code in codes if code != BAD] == []
    assert (await admin.call("get_config", "t/doc"))["version"] == 1  # nothing was written


@pytest.mark.parametrize(
    "bad",
    [
        ServiceInstance("t.Svc", "not-a-host:99999"),
        ServiceInstance("t.Svc", "127.0.0.1:0"),
        ServiceInstance("t.Svc", "evil host:80"),
        ServiceInstance("t.Svc", "127.0.0.1:\u0668\u0660"),
        ServiceInstance("t.Svc", "127.0.0.1:7001", weight=math.nan),  # type: ignore[arg-type]
        ServiceInstance("t.Svc", "127.0.0.1:7001", start_time=math.nan),
        ServiceInstance("t.Svc", "127.0.0.1:7001", metadata={"blob": b"\x00"}),
        ServiceInstance("t.Svc", "127.0.0.1:7001", metadata={"k": "v" * 9000}),
    ],
    ids=["port", "port0", "space", "digits", "weight", "start", "bytes", "size"],
)
def test_every_backend_refuses_bad_instances(open_registry: Any, bad: ServiceInstance) -> None:
    registry = open_registry()
    with pytest.raises(rpc.BadRequestError):
        registry.register(bad)
    assert registry.lookup("t.Svc") == []
    with pytest.raises(rpc.BadRequestError):
        registry.put_config("t/doc", 1, expected=math.nan)  # type: ignore[arg-type]
    assert registry.get_config("t/doc") is None


def test_client_options_are_checked_before_connecting() -> None:
    for query in ("heartbeat=nan", "heartbeat=0", "timeout=inf", "poll_wait=-1"):
        with pytest.raises(ValueError, match="must be"):
            connect(f"callscope://127.0.0.1:1?{query}")
    with pytest.raises(ValueError, match="heartbeat"):
        EmbeddedRegistry("127.0.0.1:1", heartbeat=math.nan)


@pytest.mark.zookeeper
def test_a_malformed_provider_node_on_zookeeper_hides_no_other(zookeeper_hosts, closing) -> None:
    """Nodes written past our checks (another client, an older version) are skipped one by
    one: the valid providers beside them are still listed and pushed."""
    zk = ZooKeeperBackend(zookeeper_hosts)
    admin = closing(connect(zk.url("admin")))
    admin.register(ServiceInstance("z.Svc", "127.0.0.1:7001"))
    folder = f"{zk.root}/services/z.Svc/providers"
    bad = {
        "oversize": instance("z.Svc", "127.0.0.1:7002", metadata={"k": "v" * 9000}),
        "address": instance("z.Svc", "evil host:80"),
        "weight": instance("z.Svc", "127.0.0.1:7003", weight="heavy"),
    }
    for name, data in bad.items():
        admin.client.create(f"{folder}/{name}", json.dumps(data).encode(), ephemeral=True)
    admin.client.create(f"{folder}/garbage", b"\xff not json", ephemeral=True)
    reader = closing(connect(zk.url("reader")))
    pushes: list[list[str]] = []
    reader.subscribe("z.Svc", lambda found: pushes.append([i.address for i in found]))
    wait_for(lambda: pushes and pushes[-1] == ["127.0.0.1:7001"], 10)
    assert [i.address for i in reader.lookup("z.Svc")] == ["127.0.0.1:7001"]
