"""Leases of the embedded registry: a session per client, renewed by heartbeats.

A client opens one session and renews it every heartbeat interval; what it
registered belongs to the session and goes when the session expires. The lease
is 1.75 intervals, so a dead client's instances are gone (and subscribers told)
within 2 intervals of its last heartbeat, while one late heartbeat is forgiven.

A session belongs to the principal (credential) that opened it: only that
principal may renew, close or register through it, and each principal holds at
most ``per_principal`` sessions, so one tenant cannot use up the registry's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import BusyError, ResourceExhaustedError
from ._validate import check_number

LEASE_FACTOR = 1.75
MIN_INTERVAL = 0.05
MAX_INTERVAL = 120.0
MAX_SESSIONS = 100_000
MAX_SESSIONS_PER_PRINCIPAL = 4096


@dataclass(slots=True)
class Session:
    id: str
    ttl: float
    owner: str  # a label for operators: "<principal>/<host:pid>"
    principal: str  # who may use this session
    expires: float  # time.monotonic()


class Sessions:
    """Live sessions and the timer that expires them (one task, sleeps to the next expiry)."""

    def __init__(
        self,
        on_expired: Callable[[Session], None],
        per_principal: int = MAX_SESSIONS_PER_PRINCIPAL,
    ) -> None:
        self._sessions: dict[str, Session] = {}
        self._held: dict[str, set[str]] = {}  # principal -> its session ids
        self.per_principal = per_principal
        self._on_expired = on_expired
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def held_by(self, principal: str) -> set[str]:
        """The ids of the sessions ``principal`` holds (do not change the set)."""
        return self._held.get(principal, set())

    def open(self, interval: float, owner: str, principal: str) -> Session:
        """A new session renewed every ``interval`` s; BAD_REQUEST, RESOURCE_EXHAUSTED, BUSY."""
        interval = check_number(interval, "session interval", MIN_INTERVAL, MAX_INTERVAL)
        if len(self.held_by(principal)) >= self.per_principal:
            raise ResourceExhaustedError(
                f"{principal!r} holds {self.per_principal} sessions already (the per-credential "
                "limit): close some, or reuse one per process"
            )
        if len(self._sessions) >= MAX_SESSIONS:
            raise BusyError(f"the registry holds {MAX_SESSIONS} sessions already")
        ttl = interval * LEASE_FACTOR
        return self.restore(uuid.uuid4().hex, ttl, owner, principal, ttl)

    def restore(
        self, session_id: str, ttl: float, owner: str, principal: str, grace: float
    ) -> Session:
        session = Session(session_id, ttl, owner, principal, time.monotonic() + grace)
        self._sessions[session_id] = session
        self._held.setdefault(principal, set()).add(session_id)
        self._poke()
        return session

    def _drop(self, session_id: str) -> Session | None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            held = self._held.get(session.principal, set())
            held.discard(session_id)
            if not held:
                self._held.pop(session.principal, None)
        return session

    def renew(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.expires = time.monotonic() + session.ttl
        return session

    def close(self, session_id: str) -> Session | None:
        return self._drop(session_id)

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._expire_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _expire_loop(self) -> None:
        assert self._wake is not None
        while True:
            now = time.monotonic()
            for session in [s for s in self._sessions.values() if s.expires <= now]:
                self._drop(session.id)
                self._on_expired(session)
            nearest = min((s.expires for s in self._sessions.values()), default=now + 1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.005, nearest - time.monotonic()))
