"""Long polls that name what they watch: only a change to one of those wakes them.

Before, every write answered every waiting poll, so a document written often (the quota
ledger) cost every consumer a round trip per write."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import rpc
from rpc.registry import EmbeddedRegistry, connect

from .conftest import InProcess, RawRegistry, wait_for


async def admin_at_now(inproc: InProcess) -> tuple[RawRegistry, tuple[str, int]]:
    """An admin of a fresh registry, and the (epoch, revision) to poll from."""
    admin = inproc.raw(await inproc.start(), "admin-token")
    feed = await admin.call("watch", "", 0, 0.0)
    return admin, (feed["epoch"], feed["revision"])


async def test_a_named_poll_sleeps_through_other_writes_and_wakes_for_its_own(
    inproc: InProcess,
) -> None:
    admin, (epoch, since) = await admin_at_now(inproc)
    poll = asyncio.ensure_future(admin.call("watch", epoch, since, 5.0, ["c:t/mine"], "w1"))
    for n in range(5):
        await admin.call("put_config", "t/other", {"n": n})
    await asyncio.sleep(0.3)
    assert not poll.done()  # five writes, none of them its
    await admin.call("put_config", "t/mine", {"n": 1})
    answer = await asyncio.wait_for(poll, 2.0)
    assert answer["config"] == ["t/mine", "t/other"]  # every change since, as before
    unnamed = asyncio.ensure_future(admin.call("watch", epoch, answer["revision"], 5.0))
    await asyncio.sleep(0.1)
    await admin.call("put_config", "t/other", {"n": 9})
    assert (await asyncio.wait_for(unnamed, 2.0))["config"] == ["t/other"]


async def test_a_newer_poll_of_the_same_watcher_answers_the_older_at_once(
    inproc: InProcess,
) -> None:
    admin, args = await admin_at_now(inproc)
    older = asyncio.ensure_future(admin.call("watch", *args, 20.0, ["c:t/a"], "w1"))
    other = asyncio.ensure_future(admin.call("watch", *args, 20.0, ["c:t/a"], "w2"))
    await asyncio.sleep(0.2)
    assert (await admin.call("watch", *args, 0.0, [], "w1"))["config"] == []
    assert (await asyncio.wait_for(older, 2.0))["config"] == []
    await asyncio.sleep(0.2)
    assert not other.done()  # another watcher's poll waits on
    other.cancel()


async def test_a_poll_is_not_woken_by_what_its_caller_may_not_read(inproc: InProcess) -> None:
    server = await inproc.start()
    admin = inproc.raw(server, "admin-token")
    tenant = inproc.raw(server, "tenant-b-token")  # reads config/b only
    feed = await tenant.call("watch", "", 0, 0.0)
    poll = asyncio.ensure_future(
        tenant.call("watch", feed["epoch"], feed["revision"], 1.0, ["c:t/secret", "c:b/x"])
    )
    await asyncio.sleep(0.1)
    await admin.call("put_config", "t/secret", {"v": 1})
    await asyncio.sleep(0.3)
    assert not poll.done()  # its timing would tell a write happened
    assert (await asyncio.wait_for(poll, 2.0))["config"] == []  # and the answer hides it too


async def test_bad_watch_names_are_bad_requests(inproc: InProcess) -> None:
    server = await inproc.start()
    admin = inproc.raw(server, "admin-token")
    epoch = (await admin.call("watch", "", 0, 0.0))["epoch"]
    bad: list[Any] = ["s:x", ["q:x"], ["s:a/b"], ["c:"], [5], ["c:x"] * 1025]
    codes = [await admin.code("watch", epoch, 0, 0.0, names) for names in bad]
    codes.append(await admin.code("watch", epoch, 0, 0.0, [], 5))
    codes.append(await admin.code("watch", epoch, 0, 0.0, [], "w\n"))
    assert codes == ["BAD_REQUEST"] * 8


async def test_a_client_polls_once_through_others_writes_and_hears_a_name_added_mid_poll(
    inproc: InProcess, monkeypatch: Any
) -> None:
    server = await inproc.start()
    admin = inproc.raw(server, "admin-token")
    polls: list[tuple[Any, ...]] = []
    call = EmbeddedRegistry._call

    async def counted(self: EmbeddedRegistry, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "watch":
            polls.append(args)
        return await call(self, method, *args, **kwargs)

    monkeypatch.setattr(EmbeddedRegistry, "_call", counted)
    consumer = connect(f"callscope://reader-token@{server.address}?heartbeat=5&poll_wait=20")
    seen: dict[str, list[Any]] = {"t/a": [], "t/b": []}
    try:
        await asyncio.to_thread(consumer.watch_config, "t/a", lambda d: seen["t/a"].append(d))
        await asyncio.sleep(0.3)
        waiting = len(polls)
        for n in range(20):
            await admin.call("put_config", "t/noise", {"n": n})
        await asyncio.sleep(0.5)
        assert len(polls) == waiting  # twenty writes to another key: no poll answered
        await asyncio.to_thread(consumer.watch_config, "t/b", lambda d: seen["t/b"].append(d))
        await asyncio.sleep(0.3)
        await admin.call("put_config", "t/b", {"v": 1})
        await asyncio.to_thread(wait_for, lambda: seen["t/b"][-1] is not None, 1.0)
        await admin.call("put_config", "t/a", {"v": 2})
        await asyncio.to_thread(wait_for, lambda: seen["t/a"][-1] is not None, 1.0)
        assert seen["t/a"][-1].value == {"v": 2} and seen["t/b"][-1].value == {"v": 1}
    finally:
        await asyncio.to_thread(consumer.close)


async def test_a_registry_that_cannot_filter_is_polled_as_before(
    inproc: InProcess, monkeypatch: Any, caplog: Any
) -> None:
    server = await inproc.start()
    admin = inproc.raw(server, "admin-token")
    call = EmbeddedRegistry._call

    async def older(self: EmbeddedRegistry, method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "watch" and len(args) > 3:  # what a registry before filtering answers
            raise rpc.BadRequestError("callscope.Registry.watch: too many positional arguments")
        return await call(self, method, *args, **kwargs)

    monkeypatch.setattr(EmbeddedRegistry, "_call", older)
    caplog.set_level(logging.INFO, "callscope.registry")
    consumer = connect(f"callscope://reader-token@{server.address}?heartbeat=5")
    seen: list[Any] = []
    try:
        await asyncio.to_thread(consumer.watch_config, "t/a", seen.append)
        await asyncio.sleep(0.2)
        await admin.call("put_config", "t/a", {"v": 1})
        await asyncio.to_thread(wait_for, lambda: seen and seen[-1] is not None, 2.0)
        assert "does not filter polls" in caplog.text
    finally:
        await asyncio.to_thread(consumer.close)


async def test_past_its_names_budget_a_credentials_poll_waits_for_any_change(
    inproc: InProcess, monkeypatch: Any
) -> None:
    from rpc.registry import _service

    monkeypatch.setattr(_service, "NAMES_WAITING_PER_CREDENTIAL", 3)
    admin, args = await admin_at_now(inproc)
    within = asyncio.ensure_future(admin.call("watch", *args, 5.0, ["c:t/a", "c:t/b"]))
    await asyncio.sleep(0.1)
    past = asyncio.ensure_future(admin.call("watch", *args, 5.0, ["c:t/c", "c:t/d"]))
    await asyncio.sleep(0.1)
    await admin.call("put_config", "t/other", {"v": 1})
    assert (await asyncio.wait_for(past, 2.0))["config"] == ["t/other"]  # as if unnamed
    await asyncio.sleep(0.2)
    assert not within.done()  # the first poll's names fit: it sleeps on
    await admin.call("put_config", "t/a", {"v": 1})
    await asyncio.wait_for(within, 2.0)
    again = asyncio.ensure_future(admin.call("watch", *args, 5.0, ["c:t/c", "c:t/d"]))
    await asyncio.sleep(0.1)
    assert not again.done()  # the budget is back: named again, and t/c, t/d are unchanged
    again.cancel()
