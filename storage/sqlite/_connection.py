"""One SQLite connection per store, in WAL mode, shared by threads under a lock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import StorageError, StorageUnavailable

__all__ = ["Database", "database_path"]


def database_path(location: str) -> str:
    """``sqlite://callscope.db`` -> ``callscope.db``; ``sqlite:///tmp/x.db`` -> ``/tmp/x.db``."""
    return location or "callscope.db"


class Database:
    """WAL + ``synchronous=NORMAL``: a committed batch survives a crash of the process (the
    WAL is written before commit returns); only a power cut may lose the last commits."""

    def __init__(self, path: str, schema: str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages
        self._conn.executescript(schema)

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
