"""The embedded registry as a callscope RPC service (``callscope.Registry``).

State lives in memory (:class:`RegistryState`) and in SQLite (:class:`Store`);
every write reaches both before it is acknowledged. Consumers learn about
changes by long-polling :meth:`RegistryService.watch` with the last revision
they saw, which returns as soon as anything newer exists.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from .._errors import BusyError, NotFoundError
from .._service import service
from ._auth import ADMIN, Principal
from ._model import (
    Consumer,
    ServiceInstance,
    check_key,
    check_name,
    config_namespace,
    instance_namespace,
)
from ._sessions import Session, Sessions
from ._state import RegistryState
from ._store import Store

log = logging.getLogger("callscope.registry")

SERVICE_NAME = "callscope.Registry"
MAX_WATCHERS = 10_000
MAX_WAIT = 30.0

caller: contextvars.ContextVar[Principal] = contextvars.ContextVar("caller", default=ADMIN)


async def bind_caller(inv: Any, call_next: Any) -> Any:
    """Server interceptor: make the connection's principal visible to the service methods."""
    token = caller.set(inv.principal if isinstance(inv.principal, Principal) else ADMIN)
    try:
        return await call_next(inv)
    finally:
        caller.reset(token)


def _may(namespace: str, write: bool) -> None:
    caller.get().check(namespace, write)


@service(SERVICE_NAME)
class RegistryService:
    """Registrations with leases, configuration with versions, and a change feed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._state = RegistryState()
        self._state.load(store.revision(), store.instances(), store.consumers(), store.config())
        self._sessions = Sessions(self._expired)
        self._changed = asyncio.Event()
        self._watchers = 0
        self._closing = False

    async def start(self) -> None:
        """Restore sessions with a fresh lease (twice the TTL) so live clients can renew them."""
        self._changed = asyncio.Event()
        restored = self._store.sessions()
        for session_id, ttl, owner in restored:
            self._sessions.restore(session_id, ttl, owner, grace=2 * ttl)
        self._sessions.start()
        log.info(
            "registry loaded: %d services, %d documents, %d sessions, revision %d",
            len(self._state.services()),
            len(self._state.config),
            len(restored),
            self._state.revision,
        )

    async def stop(self) -> None:
        """Release the long polls at once, so the server's drain does not wait for them."""
        self._closing = True
        self._bump()
        await self._sessions.stop()

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _expired(self, session: Session) -> None:
        changed = self._state.remove_owner(session.id)
        self._store.drop_session(session.id, self._state.revision)
        log.info("session %s of %s expired; %s changed", session.id, session.owner, changed)
        if changed:
            self._bump()

    def _session(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFoundError(f"no session {session_id!r} (expired?)")
        return session

    # -- sessions -----------------------------------------------------------
    async def open_session(self, interval: float, owner: str = "") -> dict[str, Any]:
        try:
            session = self._sessions.open(interval, f"{caller.get().name}/{owner}"[:256])
        except OverflowError as exc:
            raise BusyError(str(exc)) from None
        self._store.put_session(session.id, session.ttl, session.owner)
        return {"session": session.id, "ttl": session.ttl, "epoch": self._store.epoch}

    async def keepalive(self, session_id: str) -> float:
        if self._sessions.renew(session_id) is None:
            raise NotFoundError(f"no session {session_id!r} (expired?)")
        return self._sessions.get(session_id).ttl  # type: ignore[union-attr]

    async def close_session(self, session_id: str) -> None:
        session = self._sessions.close(session_id)
        if session is not None:
            self._expired(session)

    # -- instances ----------------------------------------------------------
    async def register(self, session_id: str, instance: dict[str, Any]) -> None:
        inst = ServiceInstance.from_dict(instance)
        _may(instance_namespace(inst.service), write=True)
        self._session(session_id)
        if self._state.put_instance(inst, session_id):
            self._store.put_instance(inst, session_id, self._state.revision)
            self._bump()

    async def unregister(self, session_id: str, service: str, instance_id: str) -> None:
        check_name(service, "service")
        _may(instance_namespace(service), write=True)
        if self._state.remove_instance(service, instance_id):
            self._store.drop_instance(service, instance_id, self._state.revision)
            self._bump()

    async def lookup(self, service: str) -> list[dict[str, Any]]:
        check_name(service, "service")
        _may(instance_namespace(service), write=False)
        return [inst.to_dict() for inst in self._state.lookup(service)]

    async def lookup_many(self, services: list[str]) -> dict[str, list[dict[str, Any]]]:
        return {name: await self.lookup(name) for name in services[:10_000]}

    async def services(self) -> list[str]:
        who = caller.get()
        return [s for s in self._state.services() if who.can(instance_namespace(s), False)]

    async def add_consumer(self, session_id: str, consumer: dict[str, Any]) -> None:
        found = Consumer.from_dict(consumer)
        _may(instance_namespace(found.service), write=False)
        self._session(session_id)
        self._state.put_consumer(found, session_id)
        self._store.put_consumer(found, session_id)

    async def remove_consumer(self, session_id: str, service: str, consumer_id: str) -> None:
        self._state.remove_consumer(service, consumer_id)
        self._store.drop_consumer(service, consumer_id)

    async def consumers(self, service: str | None = None) -> list[dict[str, Any]]:
        who = caller.get()
        return [
            c.to_dict()
            for c in self._state.list_consumers(service)
            if who.can(instance_namespace(c.service), False)
        ]

    # -- configuration ------------------------------------------------------
    async def get_config(self, key: str) -> dict[str, Any] | None:
        _may(config_namespace(check_key(key)), write=False)
        doc = self._state.get_config(key)
        return doc.to_dict() if doc else None

    async def get_many_config(self, keys: list[str]) -> dict[str, dict[str, Any] | None]:
        return {key: await self.get_config(key) for key in keys[:10_000]}

    async def put_config(self, key: str, value: Any, expected: int | None = None) -> dict[str, Any]:
        _may(config_namespace(check_key(key)), write=True)
        doc = self._state.put_config(key, value, expected)
        self._store.put_config(doc, self._state.revision)
        self._bump()
        return doc.to_dict()

    async def delete_config(self, key: str, expected: int | None = None) -> None:
        _may(config_namespace(check_key(key)), write=True)
        self._state.delete_config(key, expected)
        self._store.drop_config(key, self._state.revision)
        self._bump()

    async def list_config(self, prefix: str = "") -> list[dict[str, Any]]:
        who = caller.get()
        return [
            d.to_dict()
            for d in self._state.list_config(prefix)
            if who.can(config_namespace(d.key), False)
        ]

    # -- the change feed ----------------------------------------------------
    async def watch(self, epoch: str, since: int, wait: float = 10.0) -> dict[str, Any]:
        """What changed after revision ``since``; waits up to ``wait`` s for a change.

        ``reset`` means the caller's revision is from another registry life (or fell
        off the change log): reload everything watched.
        """
        if self._watchers >= MAX_WATCHERS:
            raise BusyError(f"{MAX_WATCHERS} watchers already wait on this registry")
        changes = self._state.changes_since(since) if epoch == self._store.epoch else None
        if changes is not None and not any(changes) and not self._closing:
            self._watchers += 1
            try:
                await asyncio.wait_for(self._changed.wait(), min(max(wait, 0.0), MAX_WAIT))
            except TimeoutError:
                pass
            finally:
                self._watchers -= 1
            changes = self._state.changes_since(since)
        who = caller.get()
        services, keys = changes if changes is not None else (set(), set())
        return {
            "epoch": self._store.epoch,
            "revision": self._state.revision,
            "reset": changes is None,
            "services": sorted(s for s in services if who.can(instance_namespace(s), False)),
            "config": sorted(k for k in keys if who.can(config_namespace(k), False)),
        }
