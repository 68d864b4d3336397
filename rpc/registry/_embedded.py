"""The client of the embedded registry (``callscope://host:port``).

One session per client, renewed every ``heartbeat`` seconds; everything
registered is re-registered by itself when the registry lost the session (a
restart without its database, an expiry during a pause). Changes arrive by a
long poll; while the registry is unreachable nothing is pushed, so consumers keep
their last lists. Each changed service and document is fetched in its own call
(its own frame): one that cannot be fetched is retried on the next poll and never
holds back the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl as ssl_
from collections.abc import Callable
from typing import Any

from .._channel import Backoff
from .._client import CallOptions
from .._errors import (
    BadRequestError,
    NotFoundError,
    ProtocolError,
    RpcError,
    TimeoutError,
    UnavailableError,
)
from .._sync import Client
from ._api import ConfigListener, InstancesListener
from ._errors import lift
from ._listeners import Listeners, deliver
from ._model import (
    ConfigDocument,
    Consumer,
    ServiceInstance,
    check_key,
    check_name,
    validate_instance,
)
from ._service import MAX_WAIT, SERVICE_NAME
from ._sessions import MAX_INTERVAL, MIN_INTERVAL
from ._state import validate_document
from ._validate import check_number
from ._waiters import MAX_WATCH_NAMES

log = logging.getLogger("callscope.registry")

_DOWN = (UnavailableError, TimeoutError)
_FETCHES = 16  # calls in flight while applying one change feed
_SECONDS = {
    "heartbeat": (MIN_INTERVAL, MAX_INTERVAL),
    "timeout": (0.001, 3600.0),
    "poll_wait": (0.0, MAX_WAIT),
}


class EmbeddedRegistry:
    """Talks to a ``callscope registry`` server; the same API as every backend."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        heartbeat: float = 1.0,
        timeout: float = 3.0,
        poll_wait: float = 10.0,
        ssl: ssl_.SSLContext | None = None,
    ) -> None:
        for name, value in (("heartbeat", heartbeat), ("timeout", timeout),
                            ("poll_wait", poll_wait)):  # fmt: skip
            try:
                check_number(value, name, *_SECONDS[name])
            except RpcError as err:
                raise ValueError(err.message) from None
        self.address = address
        self.heartbeat = heartbeat
        self._timeout = timeout
        self._poll_wait = poll_wait
        self._rpc = Client(
            [address],
            token=token,
            ssl=ssl,
            timeout=timeout,
            injvm=False,
            connect_timeout=min(timeout, 2.0),
            backoff=Backoff(0.05, min(1.0, max(0.2, heartbeat / 2))),
        )
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self._session: str | None = None
        self._session_lock: asyncio.Lock | None = None
        self._registered: dict[tuple[str, str, str, str], ServiceInstance] = {}
        self._consumers: dict[tuple[str, str], Consumer] = {}
        self._services = Listeners()
        self._config = Listeners()
        self._last: dict[str, Any] = {}  # a comparable form of what each name last pushed
        self._latest: dict[str, Any] = {}  # the value itself
        self._pushes = 0
        self._epoch = ""
        self._revision = 0
        self._stale: set[str] = set()  # "s:<service>" / "c:<key>" whose fetch failed
        self._closed = False
        self._watch_wanted = asyncio.Event()  # set when a name is newly listened to
        self._watcher = f"{self._owner}:{id(self):x}"  # this client's id for its polls
        self._filtering = True  # the registry wakes a poll only for the names it watches
        self._tasks = [
            self._rpc.submit(self._keepalive_loop()),
            self._rpc.submit(self._watch_loop()),
        ]

    # -- plumbing -----------------------------------------------------------
    async def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        options = CallOptions(timeout=self._timeout if timeout is None else timeout)
        try:
            return await self._rpc.aio.invoke(SERVICE_NAME, method, args, None, options)
        except RpcError as err:
            raise lift(err) from None

    def _run(self, coro: Any) -> Any:
        return self._rpc.run(coro)

    async def _ensure_session(self) -> str:
        if self._session_lock is None:
            self._session_lock = asyncio.Lock()
        async with self._session_lock:
            if self._session is None:
                opened = await self._call("open_session", self.heartbeat, self._owner)
                session = opened["session"]
                for inst in list(self._registered.values()):
                    await self._again(session, "register", inst.id, inst.to_dict())
                for consumer in list(self._consumers.values()):
                    await self._again(session, "add_consumer", consumer.id, consumer.to_dict())
                if self._registered:
                    log.info("registered %d instances again on %s", len(self._registered), session)
                self._session = session
            return self._session

    async def _again(self, session: str, method: str, name: str, item: dict[str, Any]) -> None:
        """Re-register one item on a new session; a refusal of that item (a quota, a
        revoked grant) is logged and skips it, never holding back the others."""
        try:
            await self._call(method, session, item)
        except (*_DOWN, NotFoundError):
            raise
        except RpcError as err:
            log.error("registry %s refused %s of %s again: %s", self.address, method, name, err)

    async def _add(self, method: str, held: dict[Any, Any], key: Any, item: Any) -> None:
        """Add ``item`` on our session and hold it in ``held`` for the next sessions.

        Held only once a session is open: a session opened here replays what is held, and
        must not send the new item twice (nor call its first registration "again")."""
        for _ in range(2):
            held.pop(key, None)
            try:
                session = await self._ensure_session()
            finally:
                held[key] = item  # unreachable: the next session registers it
            try:
                await self._call(method, session, item.to_dict())
                return
            except NotFoundError:
                if self._session == session:
                    self._session = None  # expired: open a new one and try again

    async def _keepalive_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        while not self._closed:
            next_beat = max(next_beat + self.heartbeat, loop.time())
            await asyncio.sleep(next_beat - loop.time())
            if not (self._registered or self._consumers or self._session):
                continue
            try:
                if self._session is None:
                    await self._ensure_session()
                else:
                    await self._call("keepalive", self._session, timeout=self.heartbeat)
            except NotFoundError:
                log.warning("registry %s lost our session; registering again", self.address)
                self._session = None
                with contextlib.suppress(RpcError):
                    await self._ensure_session()
            except RpcError as err:
                log.debug("keepalive to %s failed: %s", self.address, err)

    async def _watch_loop(self) -> None:
        failures = 0
        while not self._closed:
            names = self._watched()
            if not names:
                self._watch_wanted.clear()
                await self._watch_wanted.wait()
                continue
            try:
                await self._apply(await self._poll(names))
                failures = 0
            except RpcError as err:
                failures += 1
                log.debug("watching %s failed (%s); retrying", self.address, err)
                await asyncio.sleep(min(0.05 * 2**failures, 0.5))

    def _watched(self) -> list[str]:
        """What this client listens to, as the registry's poll names it."""
        return [
            *("s:" + s for s in self._services.names()),
            *("c:" + k for k in self._config.names()),
        ]

    async def _poll(self, names: list[str]) -> dict[str, Any]:
        """One long poll, woken only by a change to ``names`` (when the registry can
        filter); a name added meanwhile answers it at once, so it is never waited on with
        a stale list."""
        self._watch_wanted.clear()
        wait = min(self._poll_wait, 0.5) if self._stale else self._poll_wait
        if not self._filtering or len(names) > MAX_WATCH_NAMES:
            return await self._call(  # type: ignore[no-any-return]
                "watch", self._epoch, self._revision, wait, timeout=wait + self._timeout
            )
        args = (self._epoch, self._revision, wait, names, self._watcher)
        poll = asyncio.ensure_future(self._call("watch", *args, timeout=wait + self._timeout))
        wanted = asyncio.ensure_future(self._watch_wanted.wait())
        try:
            while True:
                await asyncio.wait({poll, wanted}, return_when=asyncio.FIRST_COMPLETED)
                if poll.done():
                    return await self._polled(poll)
                self._watch_wanted.clear()
                wanted = asyncio.ensure_future(self._watch_wanted.wait())
                with contextlib.suppress(RpcError):  # same watcher, no wait: answers `poll`
                    await self._call("watch", self._epoch, self._revision, 0.0, [], self._watcher)
        finally:
            wanted.cancel()
            poll.cancel()

    async def _polled(self, poll: asyncio.Future[Any]) -> dict[str, Any]:
        """A filtered poll's answer; a registry too old to filter is polled unfiltered
        from then on (it refuses the extra arguments as a bad request)."""
        try:
            return poll.result()  # type: ignore[no-any-return]
        except BadRequestError as err:
            if "positional argument" not in str(err):
                raise
            log.info(
                "registry %s does not filter polls (%s); polling unfiltered", self.address, err
            )
            self._filtering = False
            return await self._poll([])

    async def _apply(self, feed: dict[str, Any]) -> None:
        services, keys = self._services.names(), self._config.names()
        if not feed["reset"]:
            services = [s for s in feed["services"] if s in self._services]
            keys = [k for k in feed["config"] if k in self._config]
        names = {"s:" + s for s in services} | {"c:" + k for k in keys}
        names |= {
            n for n in self._stale if n[2:] in (self._services if n[0] == "s" else self._config)
        }
        self._epoch, self._revision = feed["epoch"], feed["revision"]
        gate = asyncio.Semaphore(_FETCHES)
        failed = await asyncio.gather(*(self._refresh(name, gate) for name in sorted(names)))
        self._stale = {name for name, bad in zip(sorted(names), failed, strict=True) if bad}

    async def _refresh(self, name: str, gate: asyncio.Semaphore) -> bool:
        """Fetch and push one service or document; returns whether it failed."""
        try:
            async with gate:
                if name[0] == "s":
                    self._push_instances(name[2:], await self._fetch_instances(name[2:]))
                else:
                    self._push_config(name[2:], await self._fetch_config(name[2:]))
            return False
        except Exception as err:  # one name's failure is that name's alone
            log.warning("fetching %s from %s failed (%s); retrying", name[2:], self.address, err)
            return True

    def _push_instances(self, service: str, instances: list[ServiceInstance]) -> None:
        marker = sorted(repr(i.to_dict()) for i in instances)
        if self._last.get("s:" + service) != marker:
            self._last["s:" + service] = marker
            self._latest["s:" + service] = instances
            self._pushes += 1
            self._services.emit(service, instances)

    def _push_config(self, key: str, doc: ConfigDocument | None) -> None:
        if self._last.get("c:" + key, ()) != doc:
            self._last["c:" + key] = doc
            self._latest["c:" + key] = doc
            self._pushes += 1
            self._config.emit(key, doc)

    # -- providers ----------------------------------------------------------
    def register(self, instance: ServiceInstance) -> None:
        """Register now, or, while the registry is down, as soon as it is back."""
        validate_instance(instance)  # never remember what the registry would refuse
        try:
            self._run(self._add("register", self._registered, instance.key, instance))
        except _DOWN as err:
            log.warning("registry %s unreachable (%s); will register when back", self.address, err)
        except RpcError:
            self._registered.pop(instance.key, None)
            raise

    def unregister(self, instance: ServiceInstance) -> None:
        self._registered.pop(instance.key, None)
        if self._session is not None:
            with contextlib.suppress(NotFoundError):  # the session ended: so did the instance
                self._run(self._call("unregister", self._session, instance.service, instance.id))

    def lookup(self, service: str) -> list[ServiceInstance]:
        return self._run(self._fetch_instances(service))  # type: ignore[no-any-return]

    def services(self) -> list[str]:
        return list(self._run(self._call("services")))

    def consumers(self, service: str | None = None) -> list[Consumer]:
        return [Consumer.from_dict(c) for c in self._run(self._call("consumers", service))]

    # -- consumers ----------------------------------------------------------
    def subscribe(self, service: str, listener: InstancesListener) -> Callable[[], None]:
        """Push the instance list to ``listener`` now (when reachable) and on every change."""
        check_name(service, "service")
        consumer = Consumer(service, f"{self._owner}:{id(self):x}")
        remove = self._services.add(service, listener)
        try:
            self._run(self._first("s:" + service, listener, self._fetch_instances(service)))
        except _DOWN:
            self._epoch = ""  # the next successful poll reloads everything watched
        except RpcError:  # refused (a grant, a bad name): nothing of it stays behind
            remove()
            raise
        try:  # being listed as a consumer is for operators: best effort, as on ZooKeeper
            self._run(self._add("add_consumer", self._consumers, (service, consumer.id), consumer))
        except RpcError as err:
            log.log(logging.DEBUG if isinstance(err, _DOWN) else logging.WARNING,
                    "not listed as a consumer of %s: %s", service, err)  # fmt: skip

        def unsubscribe() -> None:
            if remove():
                self._consumers.pop((service, consumer.id), None)
                self._last.pop("s:" + service, None)
                self._latest.pop("s:" + service, None)
                if self._session is not None:  # never blocks: may run on the loop thread
                    self._rpc.submit(self._unlist(self._session, service, consumer.id))

        return unsubscribe

    async def _unlist(self, session: str, service: str, consumer_id: str) -> None:
        with contextlib.suppress(RpcError):
            await self._call("remove_consumer", session, service, consumer_id)

    async def _fetch_instances(self, service: str) -> list[ServiceInstance]:
        return parse_instances(service, await self._call("lookup", service))

    async def _fetch_config(self, key: str) -> ConfigDocument | None:
        doc = await self._call("get_config", key)
        return ConfigDocument.from_dict(doc) if doc else None

    async def _first(self, name: str, listener: Callable[[Any], None], fetch: Any) -> None:
        """Deliver the first value on the loop thread, never older than a push it raced with."""
        self._watch_wanted.set()
        pushes = self._pushes
        value = await fetch
        if self._pushes != pushes and name in self._latest:
            value = self._latest[name]
        elif name not in self._latest:
            self._latest[name] = value
        deliver(listener, value, name)

    # -- configuration ------------------------------------------------------
    def get_config(self, key: str) -> ConfigDocument | None:
        return self._run(self._fetch_config(check_key(key)))  # type: ignore[no-any-return]

    def put_config(self, key: str, value: Any, expected: int | None = None) -> ConfigDocument:
        validate_document(key, value)  # refuse here what the server would refuse
        doc = self._run(self._call("put_config", check_key(key), value, expected))
        return ConfigDocument.from_dict(doc)

    def delete_config(self, key: str, expected: int | None = None) -> None:
        self._run(self._call("delete_config", check_key(key), expected))

    def list_config(self, prefix: str = "") -> list[ConfigDocument]:
        return self._run(self._list_config(prefix))  # type: ignore[no-any-return]

    async def _list_config(self, prefix: str) -> list[ConfigDocument]:
        """Page by page (each page one frame), for as long as the server says there is more."""
        out: list[ConfigDocument] = []
        after: str | None = ""
        while after is not None:
            page = await self._call("list_config", prefix, after)
            out += [ConfigDocument.from_dict(d) for d in page["documents"]]
            if page["next"] is not None and page["next"] <= after:
                raise ProtocolError(f"the registry's listing went back to {page['next']!r}")
            after = page["next"]
        return out

    def watch_config(self, key: str, listener: ConfigListener) -> Callable[[], None]:
        remove = self._config.add(check_key(key), listener)
        try:
            self._run(self._first("c:" + key, listener, self._fetch_config(key)))
        except _DOWN:
            self._epoch = ""

        def unwatch() -> None:
            remove()

        return unwatch

    # -- lifecycle ----------------------------------------------------------
    def close(self) -> None:
        """Unregister everything (by ending the session) and disconnect."""
        if self._closed:
            return
        self._closed = True
        self._registered.clear()
        for task in self._tasks:
            task.cancel()
        if self._session is not None:
            with contextlib.suppress(RpcError):
                self._run(self._call("close_session", self._session, timeout=1.0))
        self._rpc.close()

    def __enter__(self) -> EmbeddedRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def parse_instances(service: str, items: Any) -> list[ServiceInstance]:
    """The valid instances of a lookup; one malformed entry is skipped, not fatal to all."""
    out = []
    for item in items if isinstance(items, list) else ():
        try:
            out.append(ServiceInstance.from_dict(item))
        except RpcError as err:
            log.warning("ignoring a malformed instance of %s: %s", service, err)
    return out
