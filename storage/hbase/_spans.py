"""Spans in HBase (happybase over Thrift v1): a traces table and a trace index table.

``traces`` holds one row per trace and one column ``s:<span_id>`` per span (the span,
packed with msgpack): ``get_trace`` is one row read. ``trace_index`` holds, per
(service, start, trace), one column ``i:<span_id>`` with what a search filters on (name,
duration, error, tags), so a search is a row-range scan per salt bucket -- the buckets scanned in
parallel, each on its own pooled connection -- filtered in the client and merged.
``operations`` keeps a row per service with a column per operation.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from instrument.model import SpanRecord

from .._api import SpanStore
from .._backends import StoreUrl
from .._codec import span_from_packed, spans_to_packed
from .._model import Trace, TraceQuery, span_tags
from ._client import HBase
from ._rowkeys import index_range, index_row, index_start_us, index_trace_id, trace_row

__all__ = ["HBaseSpanStore"]

TRACES, INDEX, OPERATIONS = "traces", "trace_index", "operations"
FAMILIES = {
    TRACES: {"s": {"max_versions": 1, "compression": "NONE"}},
    INDEX: {"i": {"max_versions": 1}},
    OPERATIONS: {"o": {"max_versions": 1}},
}
BATCH = 2000
SCAN_BATCH = 500


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

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        """Scan the salt buckets in parallel (each on its own pooled connection), merge."""
        per_bucket = self._scans.map(lambda b: self._search_bucket(b, query), range(self.buckets))
        found: dict[str, None] = {}
        for _, trace_id in heapq.merge(*per_bucket):
            found[trace_id] = None
            if len(found) >= query.limit:
                break
        return list(found)

    def _search_bucket(self, bucket: int, query: TraceQuery) -> list[tuple[int, str]]:
        """This bucket's newest matching (-start, trace id), up to ``limit`` distinct traces."""
        terms = set(query.tag_terms())
        start, stop = index_range(bucket, query.service, query.start_min_us, query.start_max_us)
        # Unfiltered searches need only ``limit`` rows a bucket: do not fetch 500 of them.
        filtered = bool(query.operation or terms or query.min_duration_us or query.errors_only
                        or query.max_duration_us is not None)  # fmt: skip
        batch_size = SCAN_BATCH if filtered else min(SCAN_BATCH, query.limit + 1)

        def search(conn: Any) -> list[tuple[int, str]]:
            hits: list[tuple[int, str]] = []
            traces: set[str] = set()
            scan = conn.table(INDEX).scan(row_start=start, row_stop=stop, batch_size=batch_size)
            for row, columns in scan:
                start_us = index_start_us(row)
                if _any_span_matches(query, terms, start_us, columns.values()):
                    hits.append((-start_us, index_trace_id(row)))
                    traces.add(hits[-1][1])
                    if len(traces) >= query.limit:
                        scan.close()
                        break
            return hits

        return self.hbase.run("find traces", search)

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
