"""``failcache``: a call that fails is kept in a durable local queue and re-sent later.

The queue is a SQLite file (WAL): a consumer that restarts with the same file
resumes delivering what it held. Each entry is re-sent every ``failcache_period``
seconds, moved by up to ``failcache_jitter`` of that either way (so a fleet of
consumers does not return in step -- the jitter Dubbo's failback timer lacks), up
to ``failcache_tries`` tries in all; one that finally fails is logged with its
reason, kept as ``failed`` in the file and counted. Delivery is at least once:
use it for calls that may arrive twice (notifications, idempotent writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._codec import get_codec
from .._errors import RpcError
from .._invocation import Invocation
from ..config import Settings
from ._cluster import CLUSTERS, ClusterInvoker

__all__ = ["Failcache", "FailcacheQueue", "Queued"]

log = logging.getLogger("callscope.rpc")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failcache (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL, method TEXT NOT NULL, version TEXT NOT NULL, grp TEXT NOT NULL,
    body BLOB NOT NULL,
    tries INTEGER NOT NULL, next_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'waiting', last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS failcache_due ON failcache (state, next_at);
"""
_MAX_BATCH = 64
_MAX_WAITING = 100_000  # beyond this a failed call is an error again, not a queued one


@dataclass(frozen=True, slots=True)
class Queued:
    """One waiting call as read back from the file."""

    id: int
    service: str
    method: str
    version: str
    group: str
    args: list[Any]
    kwargs: dict[str, Any] | None
    attachments: dict[str, Any]
    tries: int


class FailcacheQueue:
    """The durable queue of one file (shared by every service configured to use it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._codec = get_codec("msgpack")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self.wake = asyncio.Event() if _loop_running() else None

    def put(self, inv: Invocation, error: RpcError, next_at: float) -> int | None:
        """Keep ``inv`` for later; ``None`` when the queue is full."""
        body = self._codec.encode([list(inv.args), inv.kwargs, dict(inv.attachments)])
        with self._lock:
            (waiting,) = self._db.execute(
                "SELECT COUNT(*) FROM failcache WHERE state = 'waiting'"
            ).fetchone()
            if waiting >= _MAX_WAITING:
                return None
            cursor = self._db.execute(
                "INSERT INTO failcache (service, method, version, grp, body, tries, next_at,"
                " last_error) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                (inv.service, inv.method, inv.version, inv.group, body, next_at, str(error)),
            )
        if self.wake is not None:
            self.wake.set()
        return cursor.lastrowid

    def due(self, now: float, limit: int = _MAX_BATCH) -> list[Queued]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, service, method, version, grp, body, tries FROM failcache"
                " WHERE state = 'waiting' AND next_at <= ? ORDER BY next_at LIMIT ?",
                (now, limit),
            ).fetchall()
        out = []
        for id_, service, method, version, group, body, tries in rows:
            args, kwargs, attachments = self._codec.decode(body)
            out.append(
                Queued(id_, service, method, version, group, args, kwargs, attachments, tries)
            )
        return out

    def next_due(self) -> float | None:
        with self._lock:
            (when,) = self._db.execute(
                "SELECT MIN(next_at) FROM failcache WHERE state = 'waiting'"
            ).fetchone()
        return when

    def delivered(self, entry: Queued) -> None:
        with self._lock:
            self._db.execute("DELETE FROM failcache WHERE id = ?", (entry.id,))

    def failed(self, entry: Queued, error: RpcError, next_at: float | None) -> None:
        """Another failed try: wait until ``next_at``, or (``None``) give the entry up."""
        with self._lock:
            if next_at is None:
                self._db.execute(
                    "UPDATE failcache SET state = 'failed', tries = tries + 1, last_error = ?"
                    " WHERE id = ?",
                    (str(error), entry.id),
                )
            else:
                self._db.execute(
                    "UPDATE failcache SET tries = tries + 1, next_at = ?, last_error = ?"
                    " WHERE id = ?",
                    (next_at, str(error), entry.id),
                )

    def counts(self) -> dict[str, int]:
        """Entries by state: ``waiting`` and ``failed``."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM failcache GROUP BY state")
            return {state: count for state, count in rows.fetchall()}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def next_try(settings: Settings, now: float | None = None) -> float:
    """When to send again: one period on, moved by up to the jitter either way."""
    jitter = settings.failcache_jitter
    return (now or time.time()) + settings.failcache_period * random.uniform(1 - jitter, 1 + jitter)


class Deliverer:
    """Re-sends due entries of one queue through the cluster, on the client's loop."""

    def __init__(self, queue: FailcacheQueue, cluster: ClusterInvoker, settings: Settings) -> None:
        self.queue = queue
        self.cluster = cluster
        self.settings = settings
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    def start(self) -> None:
        if self.task is None and _loop_running():
            if self.queue.wake is None:
                self.queue.wake = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        queue = self.queue
        assert queue.wake is not None
        while not self.stopping:
            for entry in queue.due(time.time()):
                if self.stopping:
                    return
                await self._deliver(entry)
            when = queue.next_due()
            wait = self.settings.failcache_period if when is None else when - time.time()
            queue.wake.clear()
            try:  # not wait_for: on 3.11 it can swallow a cancel that races the wake-up
                async with asyncio.timeout(max(0.01, min(wait, 60.0))):
                    await queue.wake.wait()
            except TimeoutError:
                pass

    async def _deliver(self, entry: Queued) -> None:
        cluster = self.cluster
        settings = cluster.settings(entry.service, entry.method)
        timeout = settings.attempt_timeout or settings.failcache_period
        inv = Invocation(
            entry.service,
            entry.method,
            entry.args,
            entry.kwargs,
            version=entry.version,
            group=entry.group,
            attachments=entry.attachments,
            deadline=time.monotonic() + timeout,
        )
        inv.attempt = entry.tries + 1
        try:
            provider = cluster.select(inv, cluster.providers(inv))
            await cluster.attempt(inv, provider)
        except RpcError as err:
            if entry.tries + 1 >= settings.failcache_tries:
                self.queue.failed(entry, err, None)
                cluster.count(inv, "failcache.give_up")
                log.warning(
                    "callscope: failcache gave up on %s/%s after %d tries: %s",
                    entry.service,
                    entry.method,
                    entry.tries + 1,
                    err,
                )
            else:
                self.queue.failed(entry, err, next_try(settings))
            return
        except Exception:  # a bug must not stop delivery of the rest
            log.exception("callscope: failcache delivery of %s/%s", entry.service, entry.method)
            self.queue.failed(entry, RpcError("delivery raised"), next_try(settings))
            return
        self.queue.delivered(entry)
        cluster.count(inv, "failcache.delivered")

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            if self.queue.wake is not None:
                self.queue.wake.set()
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


@CLUSTERS.register("failcache")
class Failcache:
    """One attempt; a retriable failure is queued for later delivery and the call returns
    ``failback_default`` at once (an event ``failcache.enqueue`` on the attempt's span)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    async def invoke(self, invocation: Invocation, cluster: ClusterInvoker) -> Any:
        queue = cluster.failcache(self.settings)

        def keep(inv: Invocation, error: Exception) -> None:
            if isinstance(error, RpcError) and error.retriable:
                inv.add_event("failcache.enqueue", **{"error.code": error.code})

        try:
            provider = cluster.select(invocation, cluster.providers(invocation))
            return await cluster.attempt(invocation, provider, keep)
        except RpcError as err:
            if not err.retriable or queue.put(invocation, err, next_try(self.settings)) is None:
                raise
            cluster.count(invocation, "failcache.enqueue")
            return self.settings.failback_default
