"""Leases of the embedded registry: a session per client, renewed by heartbeats.

A client opens one session and renews it every heartbeat interval; what it
registered belongs to the session and goes when the session expires. The lease
is 1.75 intervals, so a dead client's instances are gone (and subscribers told)
within 2 intervals of its last heartbeat, while one late heartbeat is forgiven.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

LEASE_FACTOR = 1.75
MIN_INTERVAL = 0.05
MAX_INTERVAL = 120.0
MAX_SESSIONS = 100_000


@dataclass(slots=True)
class Session:
    id: str
    ttl: float
    owner: str
    expires: float  # time.monotonic()


class Sessions:
    """Live sessions and the timer that expires them (one task, sleeps to the next expiry)."""

    def __init__(self, on_expired: Callable[[Session], None]) -> None:
        self._sessions: dict[str, Session] = {}
        self._on_expired = on_expired
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def open(self, interval: float, owner: str) -> Session:
        if len(self._sessions) >= MAX_SESSIONS:
            raise OverflowError(f"the registry holds {MAX_SESSIONS} sessions already")
        interval = min(max(float(interval), MIN_INTERVAL), MAX_INTERVAL)
        ttl = interval * LEASE_FACTOR
        return self.restore(uuid.uuid4().hex, ttl, owner, ttl)

    def restore(self, session_id: str, ttl: float, owner: str, grace: float) -> Session:
        session = Session(session_id, ttl, owner, time.monotonic() + grace)
        self._sessions[session_id] = session
        self._poke()
        return session

    def renew(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.expires = time.monotonic() + session.ttl
        return session

    def close(self, session_id: str) -> Session | None:
        return self._sessions.pop(session_id, None)

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
                del self._sessions[session.id]
                self._on_expired(session)
            nearest = min((s.expires for s in self._sessions.values()), default=now + 1.0)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.005, nearest - time.monotonic()))
