"""SQLite persistence for the embedded registry (WAL): nothing acknowledged is lost.

Writes are applied in memory (:class:`RegistryState`) and written here before the
caller hears back; on start the state and the sessions are loaded back, so
configuration and registrations survive a restart.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from callscope_contract import environment

from .._errors import RpcError
from ._model import ConfigDocument, Consumer, ServiceInstance

log = logging.getLogger("callscope.registry")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, ttl REAL NOT NULL, owner TEXT, principal TEXT);
CREATE TABLE IF NOT EXISTS instances (
    service TEXT, id TEXT, session TEXT, data TEXT NOT NULL, PRIMARY KEY (service, id));
CREATE TABLE IF NOT EXISTS consumers (
    service TEXT, id TEXT, session TEXT, data TEXT NOT NULL, PRIMARY KEY (service, id));
"""


class Store:
    """One SQLite file; every method is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "principal" not in columns:  # a database from before sessions had principals
            self._db.execute("ALTER TABLE sessions ADD COLUMN principal TEXT")
        self.epoch = self._meta("epoch") or self._set_meta("epoch", uuid.uuid4().hex)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> str:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        return value

    # -- loading ------------------------------------------------------------
    def revision(self) -> int:
        return int(self._meta("revision") or 0)

    def sessions(self) -> list[tuple[str, float, str, str]]:
        """``(id, ttl, owner, principal)``; older rows name their principal in ``owner``."""
        rows = self._db.execute("SELECT id, ttl, owner, principal FROM sessions")
        return [(i, t, o or "", p if p is not None else (o or "").partition("/")[0])
                for i, t, o, p in rows]  # fmt: skip

    def instances(self) -> list[tuple[ServiceInstance, str]]:
        return self._valid("instances", ServiceInstance.from_dict)

    def consumers(self) -> list[tuple[Consumer, str]]:
        return self._valid("consumers", Consumer.from_dict)

    def _valid(self, table: str, parse: Callable[[object], T]) -> list[tuple[T, str]]:
        """Rows that pass today's checks; older ones that do not (written before a limit
        existed) are deleted with a warning, rather than served or failing the start."""
        out, bad = [], []
        for service, key, data, session in self._db.execute(
            f"SELECT service, id, data, session FROM {table}"
        ):
            try:
                out.append((parse(json.loads(data)), session))
            except (RpcError, ValueError) as err:
                log.warning("dropping stored %s %s/%s: %s", table, service, key, err)
                bad.append((service, key))
        with self._db:
            self._db.execute("BEGIN")
            for row in bad:
                self._db.execute(f"DELETE FROM {table} WHERE service = ? AND id = ?", row)
        return out

    def config(self) -> list[ConfigDocument]:
        rows = self._db.execute("SELECT key, value, version FROM config")
        return [ConfigDocument(k, json.loads(v), n) for k, v, n in rows]

    # -- writes -------------------------------------------------------------
    def _tx(self, revision: int, *statements: tuple[str, tuple[object, ...]]) -> None:
        with self._db:  # one transaction: the data and the revision move together
            self._db.execute("BEGIN")
            for sql, params in statements:
                self._db.execute(sql, params)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('revision', ?)", (str(revision),))

    def put_session(self, session: str, ttl: float, owner: str, principal: str) -> None:
        sql = "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)"
        self._db.execute(sql, (session, ttl, owner, principal))

    def drop_session(self, session: str, revision: int) -> None:
        self._tx(
            revision,
            ("DELETE FROM sessions WHERE id = ?", (session,)),
            ("DELETE FROM instances WHERE session = ?", (session,)),
            ("DELETE FROM consumers WHERE session = ?", (session,)),
        )

    def put_instance(self, instance: ServiceInstance, session: str, revision: int) -> None:
        data = json.dumps(instance.to_dict())
        sql = "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, ?)"
        self._tx(revision, (sql, (instance.service, instance.id, session, data)))

    def drop_instance(self, service: str, instance_id: str, revision: int) -> None:
        sql = "DELETE FROM instances WHERE service = ? AND id = ?"
        self._tx(revision, (sql, (service, instance_id)))

    def put_consumer(self, consumer: Consumer, session: str) -> None:
        data = json.dumps(consumer.to_dict())
        sql = "INSERT OR REPLACE INTO consumers VALUES (?, ?, ?, ?)"
        self._db.execute(sql, (consumer.service, consumer.id, session, data))

    def drop_consumer(self, service: str, consumer_id: str) -> None:
        self._db.execute(
            "DELETE FROM consumers WHERE service = ? AND id = ?", (service, consumer_id)
        )

    def put_config(self, doc: ConfigDocument, revision: int) -> None:
        sql = "INSERT OR REPLACE INTO config VALUES (?, ?, ?)"
        self._tx(revision, (sql, (doc.key, json.dumps(doc.value), doc.version)))

    def drop_config(self, key: str, revision: int) -> None:
        self._tx(revision, ("DELETE FROM config WHERE key = ?", (key,)))

    def close(self) -> None:
        self._db.close()


def default_path() -> Path:
    """``$CALLSCOPE_REGISTRY_DB`` or ``~/.local/state/callscope/registry.db``."""
    env = os.environ.get(environment.CALLSCOPE_REGISTRY_DB)
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "callscope" / "registry.db"
