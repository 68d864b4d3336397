"""Spans in HBase (happybase over Thrift v1): a traces table and a trace index table.

``traces`` holds one row per trace and one column ``s:<span_id>`` per span (the span,
packed with msgpack): ``get_trace`` is one row read. ``trace_index`` holds, per
(service, start, trace), one column ``i:<span_id>`` with what a search filters on (name,
duration, error, tags), so a search is a row-range scan per salt bucket -- the buckets scanned in
parallel, each on its own pooled connection, cells pruned by an HBase filter where the query
allows, checked in the client, merged.
``operations`` keeps a row per service with a column per operation.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import orjson

from callscope_contract import SpanRecord

from .._api import SpanStore
from .._backends import StoreUrl
from .._codec import span_from_packed, spans_to_packed
from .._model import Trace, TraceQuery, span_tags
from ._client import HBase
from ._rowkeys import index_range, index_row, index_start_us, index_trace_id, trace_row

__all__ = ["HBaseSpanStore"]

TRACES, INDEX, OPERATIONS = "traces", "trace_index", "operations"
FAMILIES: dict[str, dict[str, dict[str, Any]]] = {
    TRACES: {"s": {"max_versions": 1, "compression": "NONE"}},
    INDEX: {"i": {"max_versions": 1}},
    OPERATIONS: {"o": {"max_versions": 1}},
}
BATCH = 2000
SCAN_BATCH = 500
SCAN_PAGE = 500  # index rows per page of scan_spans


class HBaseSpanStore(SpanStore):
    def __init__(self, url: StoreUrl) -> None:
        self.url = url.url
        self.buckets = url.int_option("salt", 16)
        self.hbase = HBase(url, FAMILIES)
        self._scans = ThreadPoolExecutor(self.hbase.size, thread_name_prefix="hbase-scan")
        self._known_ops: set[tuple[str, str]] = set()

    # -- writes -----------------------------------------------------------------------------
    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        traces: dict[bytes, dict[bytes, bytes]] = {}
        index: dict[bytes, dict[bytes, bytes]] = {}
        ops = {(s.service, s.name) for s in spans} - self._known_ops
        for s, body in zip(spans, spans_to_packed(spans), strict=True):
            column = b"s:" + s.span_id.encode()
            traces.setdefault(trace_row(s.trace_id, self.buckets), {})[column] = body
            summary = {"n": s.name, "d": s.duration_us, "e": s.status == "ERROR",
                       "g": span_tags(s)}  # fmt: skip
            row = index_row(s.trace_id, s.service, s.start_us, self.buckets)
            index.setdefault(row, {})[b"i:" + s.span_id.encode()] = orjson.dumps(summary)

        def write(conn: Any) -> None:
            for name, rows in ((TRACES, traces), (INDEX, index)):
                with conn.table(name).batch(batch_size=BATCH) as batch:
                    for row, columns in rows.items():
                        batch.put(row, columns)
            if ops:
                with conn.table(OPERATIONS).batch() as batch:
                    for service, name in ops:
                        batch.put(service.encode(), {b"o:" + name.encode(): b""})

        self.hbase.run("write spans", write)
        self._known_ops.update(ops)

    # -- reads ------------------------------------------------------------------------------
    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        if not trace_ids:
            return []
        keys = [trace_row(t, self.buckets) for t in dict.fromkeys(trace_ids)]
        rows = self.hbase.run("get traces", lambda c: c.table(TRACES).rows(keys))
        found = {}
        for _, columns in rows:
            spans = sorted(
                map(span_from_packed, columns.values()), key=lambda s: (s.start_us, s.span_id)
            )
            found[spans[0].trace_id] = Trace(spans[0].trace_id, spans)
        return [found[t] for t in dict.fromkeys(trace_ids) if t in found]

    def scan_spans(self, start_us: int, end_us: int) -> Iterator[SpanRecord]:
        """Each service's index rows in range, bucket by bucket; a page of them names the
        trace rows and span columns to read (a trace row also holds spans out of range)."""
        for service in self.services():
            for bucket in range(self.buckets):
                yield from self._scan_bucket(service, bucket, start_us, end_us)

    def _scan_bucket(
        self, service: str, bucket: int, start_us: int, end_us: int
    ) -> Iterator[SpanRecord]:
        next_row, stop = index_range(bucket, service, start_us, end_us)
        while True:

            def page(conn: Any, first: bytes = next_row) -> list[tuple[bytes, list[bytes]]]:
                scan = conn.table(INDEX).scan(
                    row_start=first, row_stop=stop, batch_size=SCAN_PAGE, limit=SCAN_PAGE
                )
                return [(row, list(columns)) for row, columns in scan]

            index_rows = self.hbase.run("scan spans", page)
            wanted: dict[bytes, set[bytes]] = {}
            for row, columns in index_rows:
                key = trace_row(index_trace_id(row), self.buckets)
                wanted.setdefault(key, set()).update(b"s:" + c[2:] for c in columns)
            if wanted:
                keys = list(wanted)

                def read(conn: Any, keys: list[bytes] = keys) -> list[tuple[bytes, Any]]:
                    return conn.table(TRACES).rows(keys)

                traces = self.hbase.run("scan spans", read)
                for key, columns in traces:
                    for column, body in columns.items():
                        if column in wanted[key]:
                            yield span_from_packed(body)
            if len(index_rows) < SCAN_PAGE:
                return
            next_row = index_rows[-1][0] + b"\x00"

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        """The newest ``limit`` matching traces, newest first.

        Each salt bucket holds a service's index rows newest first. Every bucket is first
        asked for about twice its fair share of ``limit`` (in parallel, each on its own
        pooled connection); the hits are merged, and only a bucket whose last hit is not
        older than the ``limit``-th newest trace so far can still hold a better one, so
        only such buckets are asked for more. (Asking each bucket for ``limit`` traces
        read and decoded 16 times the rows needed: 482 ms p99 at 1M stored spans.)
        """
        terms = set(query.tag_terms())
        search = _BucketSearch.factory(query, terms, self.buckets)
        buckets = [search(b) for b in range(self.buckets)]
        want = query.limit
        share = max(2, -(-2 * want // self.buckets))
        pending = buckets
        found: dict[str, None] = {}
        while pending:
            list(self._scans.map(partial(self._advance, traces=share), pending))
            found, cutoff = _newest(buckets, want)
            pending = [b for b in buckets if not b.done and (cutoff is None or b.last <= cutoff)]
            share *= 2
        return list(found)

    def _advance(self, bucket: _BucketSearch, traces: int) -> None:
        self.hbase.run("find traces", lambda conn: bucket.advance(conn, traces))

    def services(self) -> list[str]:
        rows = self.hbase.run(
            "list services", lambda c: list(c.table(OPERATIONS).scan(filter=b"KeyOnlyFilter()"))
        )
        return sorted(row.decode() for row, _ in rows)

    def operations(self, service: str) -> list[str]:
        row = self.hbase.run("list operations", lambda c: c.table(OPERATIONS).row(service.encode()))
        return sorted(column[2:].decode() for column in row)

    def count(self) -> int:
        def count(conn: Any) -> int:
            return sum(len(cols) for _, cols in conn.table(TRACES).scan(batch_size=SCAN_BATCH))

        return self.hbase.run("count", count)

    # -- housekeeping -----------------------------------------------------------------------
    def delete_before(self, cutoff_us: int) -> None:
        """Walk each service's index rows older than the cutoff; delete them and their spans."""
        services = self.services()

        def delete(conn: Any) -> None:
            index, traces = conn.table(INDEX), conn.table(TRACES)
            with index.batch(batch_size=BATCH) as ib, traces.batch(batch_size=BATCH) as tb:
                for service in services:
                    for bucket in range(self.buckets):
                        start, stop = index_range(bucket, service, None, cutoff_us)
                        for row, columns in index.scan(row_start=start, row_stop=stop,
                                                       batch_size=SCAN_BATCH):  # fmt: skip
                            span_columns = [b"s:" + c[2:] for c in columns]
                            tb.delete(trace_row(index_trace_id(row), self.buckets), span_columns)
                            ib.delete(row)

        self.hbase.run("delete before", delete)

    def clear(self) -> None:
        self.hbase.clear([TRACES, INDEX, OPERATIONS])
        self._known_ops.clear()

    def drop(self) -> None:
        """Delete the tables (tests)."""
        self.hbase.drop()

    def close(self) -> None:
        self._scans.shutdown()
        self.hbase.close()


def _newest(buckets: Sequence[_BucketSearch], want: int) -> tuple[dict[str, None], Any]:
    """The first ``want`` distinct traces over all buckets' hits, and the sort key of the
    hit that completed them (``None`` while fewer were found)."""
    found: dict[str, None] = {}
    for hit in heapq.merge(*(b.hits for b in buckets)):
        found[hit[1]] = None
        if len(found) >= want:
            return found, hit
    return found, None


class _BucketSearch:
    """One salt bucket's scan for a query, resumable: hits so far are ``(-start, trace)``,
    newest first; ``last`` is the newest-first sort key of the last row read."""

    def __init__(
        self, query: TraceQuery, terms: set[str], server_filter: bytes | None, rows: tuple
    ) -> None:
        self.query, self.terms, self.server_filter = query, terms, server_filter
        self.next_row, self.stop = rows
        self.hits: list[tuple[int, str]] = []
        self.traces: set[str] = set()
        self.last: tuple[int, str] = (-(1 << 63), "")
        self.done = False

    @classmethod
    def factory(cls, query: TraceQuery, terms: set[str], buckets: int) -> Any:
        server_filter = _server_filter(query, terms)
        return lambda bucket: cls(
            query, terms, server_filter,
            index_range(bucket, query.service, query.start_min_us, query.start_max_us),
        )  # fmt: skip

    def advance(self, conn: Any, traces: int) -> None:
        """Read on until ``traces`` more distinct traces matched, or the bucket ends."""
        query, terms = self.query, self.terms
        # Rows the server did not filter may mostly fail the client's checks: read more.
        exact = self.server_filter is not None or not (
            query.min_duration_us or query.max_duration_us is not None
        )
        batch = min(SCAN_BATCH, traces + 1 if exact else 8 * (traces + 1))
        goal = len(self.traces) + traces
        scan = conn.table(INDEX).scan(
            row_start=self.next_row, row_stop=self.stop, batch_size=batch,
            filter=self.server_filter,
        )  # fmt: skip
        for row, columns in scan:
            start_us = index_start_us(row)
            trace_id = index_trace_id(row)
            self.last = (-start_us, trace_id)
            self.next_row = row + b"\x00"
            if _any_span_matches(query, terms, start_us, columns.values()):
                self.hits.append(self.last)
                self.traces.add(trace_id)
                if len(self.traces) >= goal:
                    scan.close()
                    return
        self.done = True


def _server_filter(query: TraceQuery, terms: set[str]) -> bytes | None:
    """An HBase filter that drops index cells which cannot match (operation, tags, errors),
    so they are never sent or decoded. ``SubstringComparator`` ignores case, so it only
    prunes: the client still checks every cell it gets."""
    needles = []
    if query.operation:
        needles.append(b'"n":' + orjson.dumps(query.operation))
    needles.extend(orjson.dumps(term) for term in sorted(terms))
    if query.errors_only:
        needles.append(b'"e":true')
    if not needles:
        return None
    return b" AND ".join(
        b"ValueFilter(=, 'substring:" + needle.replace(b"'", b"''") + b"')" for needle in needles
    )


def _any_span_matches(q: TraceQuery, terms: set[str], start_us: int, summaries: Any) -> bool:
    for raw in summaries:
        s = orjson.loads(raw)
        if q.operation and s["n"] != q.operation:
            continue
        if terms and not terms.issubset(s["g"]):
            continue
        if q.matches(start_us, s["d"], s["e"]):
            return True
    return False
