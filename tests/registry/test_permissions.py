"""Every method of the embedded registry, times every kind of credential, with the exact outcome.

The memory backend has no credentials (it is in-process); ZooKeeper's rights are its
ACLs (the last test here).

Credentials: none, a forged token, a valid token without grants (``nobody``), read
everywhere (``reader``), write on services and read on config (``provider``), another
tenant owning only ``services/b.Svc`` and ``config/b`` (``tenant-b``), and write
everywhere (``admin``). A "foreign" session is one another credential opened.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rpc.registry import ServiceInstance, connect

from .conftest import InProcess, RawRegistry, ZooKeeperBackend, instance

KINDS = ["none", "bad", "nobody", "reader", "provider", "tenant_b", "admin"]
TOKEN = {
    "none": None,
    "bad": "forged-token",
    "nobody": "nobody-token",
    "reader": "reader-token",
    "provider": "provider-token",
    "tenant_b": "tenant-b-token",
    "admin": "admin-token",
}
OK, PD, U, NF = "OK", "PERMISSION_DENIED", "UNAUTHENTICATED", "NOT_FOUND"


def expect(nobody: str, reader: str, provider: str, tenant_b: str, admin: str) -> dict[str, str]:
    """Unauthenticated callers (no token, a forged one) are refused before any method."""
    return {"none": U, "bad": U, "nobody": nobody, "reader": reader, "provider": provider,
            "tenant_b": tenant_b, "admin": admin}  # fmt: skip


@dataclass
class World:
    """What exists before each call: the admin's session, instance, consumer and document;
    a session of tenant-b; and the caller's own session (or, without one, a foreign one)."""

    admin: RawRegistry
    caller: RawRegistry
    admin_session: str
    tenant_session: str
    own: str  # the caller's session, or a foreign one when it may not open any
    foreign: str  # a session of another credential
    epoch: str


Case = Callable[[World], Awaitable[Any]]

ADMIN_INSTANCE = instance("t.Svc", "127.0.0.1:7001")
ADMIN_INSTANCE_ID = "127.0.0.1:7001#1.0#"
ADMIN_CONSUMER = {"service": "t.Svc", "id": "admin-consumer"}


async def _own_consumer_removed(w: World) -> Any:
    await w.caller.code("add_consumer", w.own, {"service": "t.Svc", "id": "mine"})
    return await w.caller.call("remove_consumer", w.own, "t.Svc", "mine")


async def _fresh_session_closed(w: World) -> Any:
    fresh = w.own if w.own == w.foreign else await w.caller.session()
    return await w.caller.call("close_session", fresh)


# (method, call, expected outcome per credential kind)
MATRIX: list[tuple[str, Case, dict[str, str]]] = [
    ("open_session", lambda w: w.caller.call("open_session", 5.0, "me"),
     expect(PD, OK, OK, OK, OK)),
    ("keepalive own", lambda w: w.caller.call("keepalive", w.own), expect(PD, OK, OK, OK, OK)),
    ("keepalive foreign", lambda w: w.caller.call("keepalive", w.foreign),
     expect(PD, PD, PD, PD, PD)),
    ("keepalive unknown", lambda w: w.caller.call("keepalive", "f" * 32),
     expect(NF, NF, NF, NF, NF)),
    ("close_session own", _fresh_session_closed, expect(PD, OK, OK, OK, OK)),
    ("close_session foreign", lambda w: w.caller.call("close_session", w.foreign),
     expect(PD, PD, PD, PD, PD)),
    ("register t.Svc", lambda w: w.caller.call("register", w.own, instance("t.Svc", "h:1")),
     expect(PD, PD, OK, PD, OK)),
    ("register b.Svc", lambda w: w.caller.call("register", w.own, instance("b.Svc", "h:1")),
     expect(PD, PD, OK, OK, OK)),
    ("register foreign session",
     lambda w: w.caller.call("register", w.foreign, instance("b.Svc", "h:2")),
     expect(PD, PD, PD, PD, PD)),
    ("unregister another's instance",
     lambda w: w.caller.call("unregister", w.own, "t.Svc", ADMIN_INSTANCE_ID),
     expect(PD, PD, OK, PD, OK)),
    ("unregister foreign session",
     lambda w: w.caller.call("unregister", w.foreign, "t.Svc", ADMIN_INSTANCE_ID),
     expect(PD, PD, PD, PD, PD)),
    ("lookup", lambda w: w.caller.call("lookup", "t.Svc"), expect(PD, OK, OK, PD, OK)),
    ("services", lambda w: w.caller.call("services"), expect(OK, OK, OK, OK, OK)),
    ("add_consumer",
     lambda w: w.caller.call("add_consumer", w.own, {"service": "t.Svc", "id": "x"}),
     expect(PD, OK, OK, PD, OK)),
    ("add_consumer foreign session",
     lambda w: w.caller.call("add_consumer", w.foreign, {"service": "t.Svc", "id": "x"}),
     expect(PD, PD, PD, PD, PD)),
    ("remove_consumer own entry", _own_consumer_removed, expect(PD, OK, OK, PD, OK)),
    ("remove_consumer another's entry",
     lambda w: w.caller.call("remove_consumer", w.own, "t.Svc", "admin-consumer"),
     expect(PD, PD, OK, PD, OK)),
    ("remove_consumer foreign session",
     lambda w: w.caller.call("remove_consumer", w.foreign, "t.Svc", "admin-consumer"),
     expect(PD, PD, PD, PD, PD)),
    ("consumers of all", lambda w: w.caller.call("consumers"), expect(OK, OK, OK, OK, OK)),
    ("consumers of t.Svc", lambda w: w.caller.call("consumers", "t.Svc"),
     expect(PD, OK, OK, PD, OK)),
    ("get_config", lambda w: w.caller.call("get_config", "t/doc"), expect(PD, OK, OK, PD, OK)),
    ("put_config t/", lambda w: w.caller.call("put_config", "t/doc", {"v": 2}),
     expect(PD, PD, PD, PD, OK)),
    ("put_config b/", lambda w: w.caller.call("put_config", "b/doc", {"v": 2}),
     expect(PD, PD, PD, OK, OK)),
    ("delete_config", lambda w: w.caller.call("delete_config", "t/doc"),
     expect(PD, PD, PD, PD, OK)),
    ("list_config", lambda w: w.caller.call("list_config", ""), expect(OK, OK, OK, OK, OK)),
    ("watch", lambda w: w.caller.call("watch", w.epoch, 0, 0.0), expect(OK, OK, OK, OK, OK)),
    # The lifecycle of the registry is not a method anyone can call.
    ("stop", lambda w: w.caller.call("stop"), expect(NF, NF, NF, NF, NF)),
    ("start", lambda w: w.caller.call("start"), expect(NF, NF, NF, NF, NF)),
    ("_stop", lambda w: w.caller.call("_stop"), expect(NF, NF, NF, NF, NF)),
]  # fmt: skip


async def _world(inproc: InProcess, server: Any, kind: str) -> World:
    admin = inproc.raw(server, "admin-token")
    admin_session = await admin.session()
    await admin.call("register", admin_session, ADMIN_INSTANCE)
    await admin.call("add_consumer", admin_session, ADMIN_CONSUMER)
    await admin.call("put_config", "t/doc", {"v": 1})
    tenant_session = await inproc.raw(server, "tenant-b-token").session()
    caller = inproc.raw(server, TOKEN[kind])
    foreign = tenant_session if kind == "admin" else admin_session
    try:
        own = await caller.session()
    except Exception:
        own = foreign
    epoch = (await admin.call("watch", "", 0, 0.0))["epoch"]
    return World(admin, caller, admin_session, tenant_session, own, foreign, epoch)


@pytest.mark.parametrize("kind", KINDS)
async def test_every_method_checks_the_callers_rights(inproc: InProcess, kind: str) -> None:
    server = await inproc.start()
    wrong = []
    for method, call, expected in MATRIX:
        world = await _world(inproc, server, kind)  # afresh: the last call may have changed it
        try:
            await call(world)
            got = OK
        except Exception as err:
            got = getattr(err, "code", repr(err))
        if got != expected[kind]:
            wrong.append(f"{method}: expected {expected[kind]}, got {got}")
    assert not wrong, f"credential {kind!r}:\n" + "\n".join(wrong)


async def test_a_refused_call_changes_nothing(inproc: InProcess) -> None:
    """Read-only and other-tenant callers leave the admin's registrations as they were."""
    server = await inproc.start()
    world = await _world(inproc, server, "reader")
    other = inproc.raw(server, "tenant-b-token")
    for caller, session in ((world.caller, world.own), (other, world.tenant_session)):
        assert await caller.code("remove_consumer", session, "t.Svc", "admin-consumer") == PD
        assert await caller.code("unregister", session, "t.Svc", ADMIN_INSTANCE_ID) == PD
        assert await caller.code("close_session", world.admin_session) == PD
        assert await caller.code("keepalive", world.admin_session) == PD
    assert [c["id"] for c in await world.admin.call("consumers", "t.Svc")] == ["admin-consumer"]
    assert [i["address"] for i in await world.admin.call("lookup", "t.Svc")] == ["127.0.0.1:7001"]
    assert await world.admin.code("keepalive", world.admin_session) == OK


async def test_open_session_refuses_a_nan_interval_without_leaving_a_session(
    inproc: InProcess,
) -> None:
    from rpc.registry import Quotas

    server = await inproc.start(quotas=Quotas(sessions_per_credential=2))
    reader = inproc.raw(server, "reader-token")
    for bad in (math.nan, math.inf, -math.inf, -1.0, 0.0, 1e9, "1.0", True, None, [1.0]):
        assert await reader.code("open_session", bad, "x") == "BAD_REQUEST", bad
    # Nothing was left behind: the credential's whole quota of two is still free.
    first, second = await reader.session(), await reader.session()
    assert await reader.code("open_session", 1.0, "x") == "RESOURCE_EXHAUSTED"
    await reader.call("close_session", first)
    assert await reader.code("open_session", 1.0, "x") == OK
    assert await reader.code("keepalive", second) == OK


ZK_KINDS = ["anonymous", "reader", "admin"]
ZK_MATRIX: list[tuple[str, Callable[[Any], Any], dict[str, str]]] = [
    ("register", lambda r: r.register(ServiceInstance("z.Svc", "127.0.0.1:7002")),
     {"anonymous": U, "reader": PD, "admin": OK}),
    ("unregister another's", lambda r: r.unregister(ServiceInstance("z.Svc", "127.0.0.1:7001")),
     {"anonymous": U, "reader": PD, "admin": OK}),
    ("lookup", lambda r: r.lookup("z.Svc"), {"anonymous": OK, "reader": OK, "admin": OK}),
    ("services", lambda r: r.services(), {"anonymous": OK, "reader": OK, "admin": OK}),
    ("consumers", lambda r: r.consumers("z.Svc"), {"anonymous": OK, "reader": OK, "admin": OK}),
    ("get_config", lambda r: r.get_config("z/doc"), {"anonymous": OK, "reader": OK, "admin": OK}),
    ("list_config", lambda r: r.list_config(""), {"anonymous": OK, "reader": OK, "admin": OK}),
    ("put_config", lambda r: r.put_config("z/doc", {"v": 2}),
     {"anonymous": U, "reader": PD, "admin": OK}),
    ("delete_config", lambda r: r.delete_config("z/doc"),
     {"anonymous": U, "reader": PD, "admin": OK}),
]  # fmt: skip


@pytest.mark.zookeeper
def test_zookeeper_methods_by_credential(zookeeper_hosts: str, closing: Any) -> None:
    """ZooKeeper's rights are its digest ACLs: readers and anonymous callers read, only
    the writers' identities write (what our nodes grant when created with credentials)."""
    zk = ZooKeeperBackend(zookeeper_hosts)
    admin = closing(connect(zk.url("admin")))
    wrong = []
    for kind in ZK_KINDS:
        caller = closing(connect(zk.url(kind)))
        for method, call, expected in ZK_MATRIX:
            admin.register(ServiceInstance("z.Svc", "127.0.0.1:7001"))
            admin.put_config("z/doc", {"v": 1})
            try:
                call(caller)
                got = OK
            except Exception as err:
                got = getattr(err, "code", repr(err))
            if got != expected[kind]:
                wrong.append(f"{kind} {method}: expected {expected[kind]}, got {got}")
    assert not wrong, "\n".join(wrong)
