"""One SQLite connection per store, in WAL mode, shared by threads under a lock."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import NoStore, StorageError, StorageUnavailable

__all__ = ["Database", "database_path"]

BUSY_TIMEOUT_S = 10.0


def database_path(location: str) -> str:
    """``sqlite://callscope.db`` -> ``callscope.db``; ``sqlite:///tmp/x.db`` -> ``/tmp/x.db``."""
    return location or "callscope.db"


def _retry_while_locked(step: Callable[[], object]) -> None:
    """Collector workers open one new file together. Switching it to WAL and creating the
    schema upgrade a shared lock to an exclusive one, and SQLite answers BUSY at once,
    without its busy handler, when two connections race for that (it could deadlock)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.05)


class Database:
    """WAL + ``synchronous=NORMAL``: a committed batch survives a crash of the process (the
    WAL is written before commit returns); only a power cut may lose the last commits.

    ``read_only``: the file must exist and hold ``table``; it is opened with SQLite's
    ``mode=ro`` and nothing is created (no folder, file or schema), so a typo in a path
    is :class:`NoStore`, not an empty store."""

    def __init__(self, path: str, schema: str, *, read_only: bool = False, table: str = "") -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = self._open_read_only(table) if read_only else self._open(schema)
        except sqlite3.OperationalError as exc:  # cannot open, locked
            raise StorageUnavailable(f"sqlite {path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:  # "file is not a database"
            raise StorageError(f"sqlite {path}: {exc}") from exc

    def _open(self, schema: str) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
        )
        try:
            _retry_while_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages
            _retry_while_locked(lambda: conn.executescript(schema))
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self, table: str) -> sqlite3.Connection:
        path = Path(self.path)
        if self.path == ":memory:" or not path.is_file():
            raise NoStore(f"no store at {self.path}")
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
            check_same_thread=False, isolation_level=None,
        )  # fmt: skip
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        if found is None:
            conn.close()
            raise NoStore(f"no store at {self.path}: the database has no {table} table")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # locked, disk full, I/O
                raise StorageUnavailable(f"sqlite {self.path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"sqlite {self.path}: {exc}") from exc

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.OperationalError as exc:
                raise StorageUnavailable(f"sqlite {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
