"""Spans in SQLite: one row per span -- the searched columns, the span's tags as one text
column (``\x1fk=v\x1fk2=v2\x1f``, matched with ``instr`` while walking the time index),
and the whole span packed (msgpack) -- plus the (service, operation) names.

Tags are not a side table on purpose: it tripled the rows written per span (the ingest
goal is 20k spans/s on two cores); tag searches walk a service's spans newest first
instead, bounded by the time range and the limit."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from callscope_contract import SpanRecord

from .._api import SpanStore
from .._codec import span_from_packed, spans_to_packed
from .._model import Trace, TraceQuery, span_tags
from ._connection import Database

__all__ = ["SqliteSpanStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL,
    start_us INTEGER NOT NULL, duration_us INTEGER NOT NULL, error INTEGER NOT NULL,
    tags TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_service ON spans (service, start_us);
CREATE INDEX IF NOT EXISTS spans_by_operation ON spans (service, name, start_us);
CREATE TABLE IF NOT EXISTS operations (
    service TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (service, name)
) WITHOUT ROWID;
"""

_UPSERT = (
    "INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (trace_id, span_id) DO UPDATE SET "
    "service=excluded.service, name=excluded.name, start_us=excluded.start_us, "
    "duration_us=excluded.duration_us, error=excluded.error, tags=excluded.tags, "
    "body=excluded.body"
)
_SEP = "\x1f"
SCAN_PAGE = 5000
_SCAN = (
    "SELECT start_us, trace_id, span_id, body FROM spans WHERE service = ? "
    "AND (start_us, trace_id, span_id) > (?, ?, ?) AND start_us < ? "
    "ORDER BY start_us, trace_id, span_id LIMIT ?"
)
_FETCH = 256  # rows per fetch while collecting distinct trace ids


class SqliteSpanStore(SpanStore):
    def __init__(self, path: str, url: str = "", *, read_only: bool = False) -> None:
        self.url = url or f"sqlite://{path}"
        self.db = Database(path, SCHEMA, read_only=read_only, table="spans")
        self._known_ops: set[tuple[str, str]] = set()

    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        rows = [
            (s.trace_id, s.span_id, s.service, s.name, s.start_us, s.duration_us,
             s.status == "ERROR", _SEP + _SEP.join(span_tags(s)) + _SEP, body)
            for s, body in zip(spans, spans_to_packed(spans), strict=True)
        ]  # fmt: skip
        ops = list({(s.service, s.name) for s in spans} - self._known_ops)
        with self.db.transaction() as conn:
            conn.executemany(_UPSERT, rows)
            if ops:
                conn.executemany("INSERT OR IGNORE INTO operations VALUES (?,?)", ops)
        self._known_ops.update(ops)

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        if not trace_ids:
            return []
        marks = ",".join("?" * len(trace_ids))
        with self.db.reading() as conn:
            rows = conn.execute(
                f"SELECT trace_id, body FROM spans WHERE trace_id IN ({marks})", list(trace_ids)
            ).fetchall()
        by_trace: dict[str, list[SpanRecord]] = {}
        for trace_id, body in rows:
            by_trace.setdefault(trace_id, []).append(span_from_packed(body))
        return [
            Trace(t, sorted(by_trace[t], key=lambda s: (s.start_us, s.span_id)))
            for t in dict.fromkeys(trace_ids)
            if t in by_trace
        ]

    def scan_spans(self, start_us: int, end_us: int) -> Iterator[SpanRecord]:
        """Service by service along the ``spans_by_service`` index (no index on time alone:
        it would slow every write for the sake of a batch read), a page at a time."""
        for service in self.services():
            after = (start_us, "", "")
            while True:
                with self.db.reading() as conn:
                    rows = conn.execute(_SCAN, (service, *after, end_us, SCAN_PAGE)).fetchall()
                for *_, body in rows:
                    yield span_from_packed(body)
                if len(rows) < SCAN_PAGE:
                    break
                after = rows[-1][:3]

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        sql, args = _search_sql(query)
        found: dict[str, None] = {}
        with self.db.reading() as conn:
            cursor = conn.execute(sql, args)
            while len(found) < query.limit:
                chunk = cursor.fetchmany(_FETCH)
                if not chunk:
                    break
                for (trace_id,) in chunk:
                    found[trace_id] = None
                    if len(found) >= query.limit:
                        break
            cursor.close()
        return list(found)

    def services(self) -> list[str]:
        with self.db.reading() as conn:
            rows = conn.execute("SELECT DISTINCT service FROM operations ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def operations(self, service: str) -> list[str]:
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT name FROM operations WHERE service=? ORDER BY 1", (service,)
            ).fetchall()
        return [r[0] for r in rows]

    def delete_before(self, cutoff_us: int) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM spans WHERE start_us < ?", (cutoff_us,))

    def count(self) -> int:
        with self.db.reading() as conn:
            return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]

    def clear(self) -> None:
        with self.db.transaction() as conn:
            for table in ("spans", "operations"):
                conn.execute(f"DELETE FROM {table}")
        self._known_ops.clear()

    def close(self) -> None:
        self.db.close()


def _search_sql(q: TraceQuery) -> tuple[str, list[object]]:
    """Matching spans' trace ids, newest first, walking an index in time order."""
    where: list[str] = ["service = ?"]
    args: list[object] = [q.service]
    if q.operation:
        where.append("name = ?")
        args.append(q.operation)
    for term in q.tag_terms():
        where.append("instr(tags, ?) > 0")
        args.append(_SEP + term + _SEP)
    if q.start_min_us is not None:
        where.append("start_us >= ?")
        args.append(q.start_min_us)
    if q.start_max_us is not None:
        where.append("start_us < ?")
        args.append(q.start_max_us)
    if q.min_duration_us is not None:
        where.append("duration_us >= ?")
        args.append(q.min_duration_us)
    if q.max_duration_us is not None:
        where.append("duration_us <= ?")
        args.append(q.max_duration_us)
    if q.errors_only:
        where.append("error = 1")
    return f"SELECT trace_id FROM spans WHERE {' AND '.join(where)} ORDER BY start_us DESC", args
