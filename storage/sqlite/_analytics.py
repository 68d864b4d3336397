"""Analytics rows in SQLite: one table keyed by (kind, natural key)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .._api import AnalyticsRow
from ._connection import Database

__all__ = ["SqliteAnalyticsTable"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS analytics (
    kind TEXT NOT NULL, key TEXT NOT NULL, service TEXT NOT NULL, time_us INTEGER NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS analytics_by_service ON analytics (kind, service, time_us);
CREATE INDEX IF NOT EXISTS analytics_by_time ON analytics (kind, time_us);
"""


class SqliteAnalyticsTable:
    def __init__(self, path: str, url: str = "", *, read_only: bool = False) -> None:
        self.url = url or f"sqlite://{path}"
        self.db = Database(path, SCHEMA, read_only=read_only, table="analytics")

    def put(self, kind: str, rows: Iterable[AnalyticsRow]) -> None:
        values = [(kind, key, svc, t, json.dumps(body)) for key, svc, t, body in rows]
        with self.db.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO analytics VALUES (?,?,?,?,?)", values)

    def rows(
        self, kind: str, service: str | None, start_us: int, end_us: int
    ) -> list[dict[str, Any]]:
        sql = "SELECT body FROM analytics WHERE kind=? AND time_us >= ? AND time_us < ?"
        args: list[Any] = [kind, start_us, end_us]
        if service is not None:
            sql += " AND service=?"
            args.append(service)
        with self.db.reading() as conn:
            return [json.loads(b) for (b,) in conn.execute(sql, args).fetchall()]

    def page(
        self,
        kind: str,
        service: str,
        start_us: int,
        end_us: int,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Newest first from the (kind, service, time_us) index, ``limit`` rows at most."""
        sql = ("SELECT time_us, key, body FROM analytics"
               " WHERE kind=? AND service=? AND time_us >= ? AND time_us < ?")  # fmt: skip
        args: list[Any] = [kind, service, start_us, end_us]
        if before is not None:
            sql += " AND (time_us < ? OR (time_us = ? AND key < ?))"
            args += [before[0], before[0], before[1]]
        sql += " ORDER BY time_us DESC, key DESC LIMIT ?"
        args.append(limit)
        with self.db.reading() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [(t, key, json.loads(body)) for t, key, body in rows]

    def delete_before(self, cutoff_us: int) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM analytics WHERE time_us < ?", (cutoff_us,))

    def clear(self) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM analytics")

    def refresh(self) -> None:
        """Reads see every committed write already."""

    def close(self) -> None:
        self.db.close()
