"""The embedded registry as a callscope RPC service (``callscope.Registry``).

State lives in memory (:class:`RegistryState`) and in SQLite (:class:`Store`);
every write reaches SQLite first, then memory, before it is acknowledged.
Consumers learn about changes by long-polling :meth:`RegistryService.watch` with
the last revision they saw, which returns as soon as anything newer exists (of what
the poll names, when it names what it watches: see ``_waiters``).

Every method checks its arguments (``BAD_REQUEST``) and the caller's rights on
what it touches (``PERMISSION_DENIED``); a session belongs to the principal that
opened it, and only that principal may renew, close or register through it.
Only the methods below the ``-- sessions`` line are callable: the lifecycle hooks
are private, so no client can stop the registry.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections import Counter
from typing import Any

from .._errors import (
    BadRequestError,
    BusyError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from .._service import service
from ._auth import ADMIN, Principal
from ._model import (
    MAX_KEY_LENGTH,
    Consumer,
    ServiceInstance,
    check_key,
    check_name,
    config_namespace,
    instance_namespace,
)
from ._quotas import Quotas
from ._sessions import Session, Sessions
from ._shares import DocumentShares
from ._state import RegistryState, validate_document
from ._store import Store
from ._validate import check_int, check_number, check_text
from ._waiters import MAX_WATCH_NAMES, Waiters, WatcherKey

log = logging.getLogger("callscope.registry")

SERVICE_NAME = "callscope.Registry"
MAX_WATCHERS = 10_000
MAX_WAIT = 30.0
NAMES_WAITING_PER_CREDENTIAL = 65_536
"""Names one credential's waiting polls may watch in all (each costs an entry in the
waiters' table); past it a poll waits for any change, as an unnamed one."""
LIST_PAGE_BYTES = 4 << 20

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

    def __init__(self, store: Store, quotas: Quotas | None = None) -> None:
        self._quotas = quotas or Quotas()
        self._store = store
        self._state = RegistryState(max_instances_per_service=self._quotas.instances_per_service)
        self._state.load(store.revision(), store.instances(), store.consumers(), store.config())
        self._shares = DocumentShares(self._quotas)
        for doc in self._state.config.values():
            self._shares.restore(doc.key, _size(doc.value))
        self._sessions = Sessions(self._expired, self._quotas.sessions_per_credential)
        self._waiters = Waiters()
        self._woken_at = self._state.revision  # the revision the last wake-up covered
        self._watchers: Counter[str] = Counter()
        self._named: Counter[str] = Counter()  # names its waiting polls watch, per credential
        self._closing = False

    async def _start(self) -> None:
        """Restore sessions with a fresh lease (twice the TTL) so live clients can renew them."""
        restored = self._store.sessions()
        for session_id, ttl, owner, principal in restored:
            self._sessions.restore(session_id, ttl, owner, principal, grace=2 * ttl)
        self._sessions.start()
        log.info(
            "registry loaded: %d services, %d documents, %d sessions, revision %d",
            len(self._state.services()),
            len(self._state.config),
            len(restored),
            self._state.revision,
        )

    async def _stop(self) -> None:
        """Release the long polls at once, so the server's drain does not wait for them."""
        self._closing = True
        self._bump()
        await self._sessions.stop()

    def _bump(self) -> None:
        """After a write (or at stop): wake the polls it concerns."""
        changes = None if self._closing else self._state.changes_since(self._woken_at)
        self._woken_at = self._state.revision
        if changes is None:
            self._waiters.wake_all()
        else:
            self._waiters.wake(*changes)

    def _expired(self, session: Session) -> None:
        try:
            changed = self._state.remove_owner(
                session.id, lambda rev: self._store.drop_session(session.id, rev)
            )
        except Exception:  # the disk failed: keep the expiry timer alive for the others
            log.exception("dropping session %s failed", session.id)
            return
        log.info("session %s of %s ended; %s changed", session.id, session.owner, changed)
        if changed:
            self._bump()

    def _own_session(self, session_id: Any) -> Session:
        """The caller's own live session: NOT_FOUND when gone, PERMISSION_DENIED if not its."""
        check_text(session_id, "session id", empty=False)
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFoundError(f"no session {session_id!r} (expired?)")
        if session.principal != caller.get().name:
            raise PermissionDeniedError(
                f"session {session_id!r} belongs to another credential than {caller.get().name!r}"
            )
        return session

    def _may_hold_more(self, session: Session, already: str | None) -> None:
        """RESOURCE_EXHAUSTED when the session's principal holds its quota of registrations
        (re-registering something one of its sessions already holds costs nothing)."""
        mine = self._sessions.held_by(session.principal)
        if already in mine:
            return
        held = sum(self._state.held(s) for s in mine)
        if held >= self._quotas.registrations_per_credential:
            raise ResourceExhaustedError(
                f"{session.principal!r} holds {held} registrations already (the per-credential "
                f"limit is {self._quotas.registrations_per_credential})"
            )

    # -- sessions -----------------------------------------------------------
    async def open_session(self, interval: float, owner: str = "") -> dict[str, Any]:
        """A lease renewed every ``interval`` s; needs a grant on some ``services`` namespace."""
        who = caller.get()
        check_text(owner, "owner")
        if not who.reaches("services"):
            raise PermissionDeniedError(f"{who.name!r} has no grant on any service")
        session = self._sessions.open(interval, f"{who.name}/{owner}"[:256], who.name)
        try:
            self._store.put_session(session.id, session.ttl, session.owner, session.principal)
        except Exception:
            self._sessions.close(session.id)
            raise
        return {"session": session.id, "ttl": session.ttl, "epoch": self._store.epoch}

    async def keepalive(self, session_id: str) -> float:
        session = self._own_session(session_id)
        self._sessions.renew(session.id)
        return session.ttl

    async def close_session(self, session_id: str) -> None:
        session = self._own_session(session_id)
        if self._sessions.close(session.id) is not None:
            self._expired(session)

    # -- instances ----------------------------------------------------------
    async def register(self, session_id: str, instance: dict[str, Any]) -> None:
        inst = ServiceInstance.from_dict(instance)
        _may(instance_namespace(inst.service), write=True)
        session = self._own_session(session_id)
        self._may_hold_more(session, self._state.instance_owner(inst.service, inst.id))

        def persist(revision: int) -> None:
            self._store.put_instance(inst, session.id, revision)

        if self._state.put_instance(inst, session.id, persist):
            self._bump()

    async def unregister(self, session_id: str, service: str, instance_id: str) -> None:
        check_name(service, "service")
        check_text(instance_id, "instance id", empty=False)
        _may(instance_namespace(service), write=True)
        self._own_session(session_id)

        def persist(revision: int) -> None:
            self._store.drop_instance(service, instance_id, revision)

        if self._state.remove_instance(service, instance_id, persist):
            self._bump()

    async def lookup(self, service: str) -> list[dict[str, Any]]:
        check_name(service, "service")
        _may(instance_namespace(service), write=False)
        return [inst.to_dict() for inst in self._state.lookup(service)]

    async def services(self) -> list[str]:
        who = caller.get()
        return [s for s in self._state.services() if who.can(instance_namespace(s), False)]

    async def add_consumer(self, session_id: str, consumer: dict[str, Any]) -> None:
        found = Consumer.from_dict(consumer)
        _may(instance_namespace(found.service), write=False)
        session = self._own_session(session_id)
        self._may_hold_more(session, self._state.consumer_owner(found.service, found.id))
        self._state.put_consumer(
            found, session.id, lambda _: self._store.put_consumer(found, session.id)
        )

    async def remove_consumer(self, session_id: str, service: str, consumer_id: str) -> None:
        """Remove a consumer entry this session listed (a writer of the service: any entry)."""
        check_name(service, "service")
        check_text(consumer_id, "consumer id", empty=False)
        _may(instance_namespace(service), write=False)
        session = self._own_session(session_id)
        owner = self._state.consumer_owner(service, consumer_id)
        if owner is None:
            return
        if owner != session.id and not caller.get().can(instance_namespace(service), True):
            raise PermissionDeniedError(f"consumer {consumer_id!r} was listed by another session")
        self._state.remove_consumer(
            service, consumer_id, lambda _: self._store.drop_consumer(service, consumer_id)
        )

    async def consumers(self, service: str | None = None) -> list[dict[str, Any]]:
        """One service's consumers (needs read on it), or all the caller may read."""
        if service is not None:
            check_name(service, "service")
            _may(instance_namespace(service), write=False)
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

    async def put_config(self, key: str, value: Any, expected: int | None = None) -> dict[str, Any]:
        _may(config_namespace(check_key(key)), write=True)
        validate_document(key, value)
        writer, size = caller.get().name, _size(value)
        self._shares.check(writer, key, size)
        doc = self._state.put_config(key, value, expected, self._store.put_config)
        self._shares.wrote(writer, key, size)
        self._bump()
        return doc.to_dict()

    async def delete_config(self, key: str, expected: int | None = None) -> None:
        _may(config_namespace(check_key(key)), write=True)
        self._state.delete_config(key, expected, lambda rev: self._store.drop_config(key, rev))
        self._shares.forget(key)
        self._bump()

    async def list_config(self, prefix: str = "", after: str = "") -> dict[str, Any]:
        """The documents under ``prefix`` the caller may read, by key, from after ``after``:
        one page of at most ``LIST_PAGE_BYTES`` (always one document at least), and the key
        to continue ``after`` (``None`` on the last page), so no listing outgrows a frame."""
        check_text(prefix, "prefix", limit=MAX_KEY_LENGTH)
        check_text(after, "after", limit=MAX_KEY_LENGTH)
        who = caller.get()
        page: list[dict[str, Any]] = []
        size = 0
        for doc in self._state.list_config(prefix):
            if doc.key <= after or not who.can(config_namespace(doc.key), False):
                continue
            if page and size >= LIST_PAGE_BYTES:
                return {"documents": page, "next": page[-1]["key"]}
            page.append(doc.to_dict())
            size += len(json.dumps(doc.value)) + len(doc.key)
        return {"documents": page, "next": None}

    # -- the change feed ----------------------------------------------------
    async def watch(
        self,
        epoch: str,
        since: int,
        wait: float = 10.0,
        names: list[str] | None = None,
        watcher: str = "",
    ) -> dict[str, Any]:
        """What changed after revision ``since``; waits up to ``wait`` s for a change.

        ``names`` (``s:<service>``, ``c:<key>``, at most ``MAX_WATCH_NAMES``): wait
        only for a change to one of those; the answer still lists every change since
        ``since``. ``watcher``: the caller's id for its polls; a newer poll with the same
        id answers a waiting older one at once. ``reset`` means the caller's revision
        is from another registry life (or fell off the change log): reload everything.
        """
        check_text(epoch, "epoch")
        check_int(since, "since")
        wait = min(check_number(wait, "wait", 0.0, 1e9), MAX_WAIT)
        who = caller.get()
        wanted = None if names is None else _watched(names, who)
        key: WatcherKey | None = (who.name, check_text(watcher, "watcher")) if watcher else None
        self._waiters.supersede(key)
        if sum(self._watchers.values()) >= MAX_WATCHERS:
            raise BusyError(f"{MAX_WATCHERS} watchers already wait on this registry")
        if self._watchers[who.name] >= self._quotas.watches_per_credential:
            raise ResourceExhaustedError(
                f"{who.name!r} has {self._quotas.watches_per_credential} watches waiting "
                "already (the per-credential limit)"
            )
        changes = self._state.changes_since(since) if epoch == self._store.epoch else None
        if changes is not None and not _touches(changes, wanted) and not self._closing:
            named = 0 if wanted is None else len(wanted)
            if self._named[who.name] + named > NAMES_WAITING_PER_CREDENTIAL:
                wanted, named = None, 0  # memory stays bounded: woken by any change instead
            self._watchers[who.name] += 1
            self._named[who.name] += named
            try:
                with self._waiters.waiting(wanted, key) as changed:
                    await asyncio.wait_for(changed.wait(), wait)
            except TimeoutError:
                pass
            finally:
                self._watchers[who.name] -= 1
                self._named[who.name] -= named
                if self._watchers[who.name] <= 0:
                    del self._watchers[who.name]
                    del self._named[who.name]
            changes = self._state.changes_since(since)
        services, keys = changes if changes is not None else (set(), set())
        return {
            "epoch": self._store.epoch,
            "revision": self._state.revision,
            "reset": changes is None,
            "services": sorted(s for s in services if who.can(instance_namespace(s), False)),
            "config": sorted(k for k in keys if who.can(config_namespace(k), False)),
        }


def _watched(names: Any, who: Principal) -> frozenset[str]:
    """The names a poll may wait on: checked, and only those ``who`` may read (so a poll
    learns nothing, not even timing, of what it may not see)."""
    if not isinstance(names, list) or len(names) > MAX_WATCH_NAMES:
        raise BadRequestError(f"names must be a list of at most {MAX_WATCH_NAMES} names")
    wanted = set()
    for name in names:
        check_text(name, "a watched name", limit=2 + MAX_KEY_LENGTH)
        kind, _, rest = name.partition(":")
        if kind == "s":
            check_name(rest, "service")
            if who.can(instance_namespace(rest), False):
                wanted.add(name)
        elif kind == "c":
            if who.can(config_namespace(check_key(rest)), False):
                wanted.add(name)
        else:
            raise BadRequestError(f"a watched name is s:<service> or c:<key>, not {name!r}")
    return frozenset(wanted)


def _touches(changes: tuple[set[str], set[str]], wanted: frozenset[str] | None) -> bool:
    services, keys = changes
    if wanted is None:
        return bool(services or keys)
    return any("s:" + s in wanted for s in services) or any("c:" + k in wanted for k in keys)


def _size(value: Any) -> int:
    """A document's size as quotas count it: its JSON text (as the store keeps it)."""
    return len(json.dumps(value, separators=(",", ":")))
