"""Spans in Elasticsearch: daily indices from a template, bulk writes, collapsed searches."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from callscope_contract import SpanRecord

from .._api import SpanStore
from .._backends import StoreUrl
from .._codec import doc_json, span_from_dict
from .._errors import NoStore, RejectedSpans, StorageUnavailable
from .._model import Trace, TraceQuery
from ._client import connect, guarded, is_retriable_status
from ._deleting import delete_matching
from ._layout import SPAN_MAPPINGS, day_index, index_day, span_doc, spans_pattern

__all__ = ["ElasticSpanStore"]

MAX_TRACE_SPANS = 10_000
SCAN_PAGE = 5000
BULK_DOCS = 500
BULK_BYTES = 8 << 20
BULK_PARALLEL = 2
_BULK_FILTER = "errors,items.*.status,items.*.error"  # not the 200-byte echo of every item


class ElasticSpanStore(SpanStore):
    def __init__(self, url: StoreUrl) -> None:
        self.url = url.url
        self.prefix = url.option("prefix", "callscope")
        self.pattern = spans_pattern(self.prefix)
        self.client = connect(url)
        self._settings = {
            "number_of_shards": url.int_option("shards", 1),
            "number_of_replicas": url.int_option("replicas", 0),
            "refresh_interval": url.option("refresh_interval", "1s"),
        }
        self._bulk_pool = ThreadPoolExecutor(BULK_PARALLEL, thread_name_prefix="es-bulk")
        if url.read_only:  # a writer put the template when it opened the store
            template = f"{self.prefix}-spans"
            if not guarded(
                lambda: self.client.indices.exists_index_template(name=template),
                "check index template",
            ):
                self.close()
                raise NoStore(f"no store at {self.url}: no index template {template}")
        else:
            self._put_template()

    def _put_template(self) -> None:
        guarded(
            lambda: self.client.indices.put_index_template(
                name=f"{self.prefix}-spans",
                index_patterns=[self.pattern],
                template={"settings": self._settings, "mappings": SPAN_MAPPINGS},
                priority=100,
            ),
            "put index template",
        )

    # -- writes -----------------------------------------------------------------------------
    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        """Bulk requests of up to ``BULK_DOCS`` spans, ``BULK_PARALLEL`` in flight at once: the
        next request is encoded while Elasticsearch indexes the previous ones."""
        futures, start = [], 0
        for lines in _bulk_bodies(self.prefix, spans):
            futures.append((start, self._bulk_pool.submit(self._bulk, b"".join(lines))))
            start += len(lines) // 4
        rejected: dict[int, str] = {}
        retry: list[str] = []
        failure: BaseException | None = None
        for base, future in futures:  # wait for every request before raising
            try:
                for i, reason, retriable in future.result():
                    (retry.append(reason) if retriable else rejected.__setitem__(base + i, reason))
            except Exception as exc:  # StorageUnavailable, StorageError
                failure = failure or exc
        if failure:
            raise failure
        if retry:
            raise StorageUnavailable(f"elasticsearch refused {len(retry)} span(s): {retry[0]}")
        if rejected:
            raise RejectedSpans(rejected)

    def _bulk(self, body: bytes) -> list[tuple[int, str, bool]]:
        """One bulk request; the documents it failed: (position, reason, retriable)."""
        result = guarded(
            lambda: self.client.bulk(operations=body, filter_path=_BULK_FILTER), "bulk write"
        )
        if not result.get("errors"):
            return []
        failed = []
        for i, item in enumerate(result["items"]):
            outcome = item["index"]
            if "error" in outcome:
                reason = json.dumps(outcome["error"])[:500]
                failed.append((i, reason, is_retriable_status(outcome.get("status", 500))))
        return failed

    # -- reads ------------------------------------------------------------------------------
    def _search(self, what: str, **kwargs: Any) -> Any:
        return guarded(
            lambda: self.client.search(
                index=self.pattern, ignore_unavailable=True, allow_no_indices=True, **kwargs
            ),
            what,
        )

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        if not trace_ids:
            return []
        result = self._search(
            "get traces",
            query={"bool": {"filter": [{"terms": {"trace_id": list(trace_ids)}}]}},
            size=MAX_TRACE_SPANS,
            sort=["_doc"],  # no scoring, no sorting in the cluster: a trace is sorted here
            track_total_hits=False,
            filter_path="hits.hits._source",
        )
        by_trace: dict[str, list[SpanRecord]] = {}
        for hit in result.get("hits", {}).get("hits", ()):
            span = span_from_dict(hit["_source"])
            by_trace.setdefault(span.trace_id, []).append(span)
        return [
            Trace(t, sorted(by_trace[t], key=lambda s: (s.start_us, s.span_id)))
            for t in dict.fromkeys(trace_ids)
            if t in by_trace
        ]

    def scan_spans(self, start_us: int, end_us: int) -> Iterator[SpanRecord]:
        """Pages sorted by (start, trace, span), each continuing after the last one's key."""
        after: list[Any] | None = None
        while True:
            page = {"search_after": after} if after else {}
            result = self._search(
                "scan spans",
                query={"range": {"start_us": {"gte": start_us, "lt": end_us}}},
                sort=[{"start_us": "asc"}, {"trace_id": "asc"}, {"span_id": "asc"}],
                size=SCAN_PAGE,
                track_total_hits=False,
                filter_path="hits.hits._source,hits.hits.sort",
                **page,
            )
            hits = result.get("hits", {}).get("hits", ())
            for hit in hits:
                yield span_from_dict(hit["_source"])
            if len(hits) < SCAN_PAGE:
                return
            after = hits[-1]["sort"]

    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        result = self._search(
            "find traces",
            query={"bool": {"filter": _filters(query)}},
            sort=[{"start_us": "desc"}],
            collapse={"field": "trace_id"},
            size=query.limit,
            source=False,
            track_total_hits=False,
            filter_path="hits.hits.fields",
        )
        return [hit["fields"]["trace_id"][0] for hit in result.get("hits", {}).get("hits", ())]

    def _terms(self, field: str, query: dict[str, Any]) -> list[str]:
        result = self._search(
            f"list {field}",
            query=query,
            size=0,
            aggs={"names": {"terms": {"field": field, "size": 10_000}}},
        )
        return sorted(b["key"] for b in result["aggregations"]["names"]["buckets"])

    def services(self) -> list[str]:
        return self._terms("service", {"match_all": {}})

    def operations(self, service: str) -> list[str]:
        return self._terms("name", {"term": {"service": service}})

    def count(self) -> int:
        self.refresh()
        result = guarded(
            lambda: self.client.count(index=self.pattern, allow_no_indices=True), "count"
        )
        return int(result["count"])

    # -- housekeeping -----------------------------------------------------------------------
    def _indices(self) -> list[str]:
        found = guarded(
            lambda: self.client.indices.get(index=self.pattern, allow_no_indices=True),
            "list indices",
        )
        return sorted(found)

    def delete_before(self, cutoff_us: int) -> None:
        """Drop whole days before the cutoff's day, then delete by query inside that day."""
        cutoff_day = dt.datetime.fromtimestamp(cutoff_us / 1e6, dt.UTC).date()
        old = [i for i in self._indices() if (index_day(self.prefix, i) or cutoff_day) < cutoff_day]
        if old:
            guarded(lambda: self.client.indices.delete(index=",".join(old)), "delete indices")
        delete_matching(self.client, self.pattern, {"range": {"start_us": {"lt": cutoff_us}}})

    def refresh(self) -> None:
        guarded(
            lambda: self.client.indices.refresh(index=self.pattern, allow_no_indices=True),
            "refresh",
        )

    def clear(self) -> None:
        indices = self._indices()
        if indices:
            guarded(lambda: self.client.indices.delete(index=",".join(indices)), "clear")

    def drop(self) -> None:
        """Delete the indices and the template (tests)."""
        self.clear()
        guarded(
            lambda: self.client.indices.delete_index_template(name=f"{self.prefix}-spans"),
            "drop template",
        )

    def close(self) -> None:
        self._bulk_pool.shutdown()
        self.client.close()


def _bulk_bodies(prefix: str, spans: Sequence[SpanRecord]) -> Iterator[list[bytes]]:
    """The NDJSON lines of each bulk request (an action line, then the document)."""
    lines: list[bytes] = []
    size = 0
    for s in spans:
        action = {"index": {"_index": day_index(prefix, s.start_us), "_id": s.trace_id + s.span_id}}
        doc = doc_json(span_doc(s))
        lines += (orjson.dumps(action), b"\n", doc, b"\n")
        size += len(doc) + 100
        if len(lines) >= 4 * BULK_DOCS or size >= BULK_BYTES:
            yield lines
            lines, size = [], 0
    if lines:
        yield lines


def _filters(q: TraceQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [{"term": {"service": q.service}}]
    if q.operation:
        filters.append({"term": {"name": q.operation}})
    filters.extend({"term": {"tags": term}} for term in q.tag_terms())
    duration = {}
    if q.min_duration_us is not None:
        duration["gte"] = q.min_duration_us
    if q.max_duration_us is not None:
        duration["lte"] = q.max_duration_us
    if duration:
        filters.append({"range": {"duration_us": duration}})
    start = {}
    if q.start_min_us is not None:
        start["gte"] = q.start_min_us
    if q.start_max_us is not None:
        start["lt"] = q.start_max_us
    if start:
        filters.append({"range": {"start_us": start}})
    if q.errors_only:
        filters.append({"term": {"error": True}})
    return filters
