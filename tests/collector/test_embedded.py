"""Embedded mode (no Kafka): the spool -> SQLite, dead letters to a file, back-pressure."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from collector import CollectorConfig
from instrument import Spool
from instrument.model import SpanRecord
from storage import SpanStore, StorageUnavailable, TraceQuery, open_span_store

from .helpers import BASE_US, kpi_json, running, span_json, wait_for


def config(tmp_path: Path, **overrides: object) -> CollectorConfig:
    values: dict = {
        "store_url": f"sqlite://{tmp_path / 'store.db'}",
        "spool_dir": str(tmp_path / "spool"),
        "dlq_file": str(tmp_path / "dlq.jsonl"),
        "http_port": 0,
        "batch_size": 200,
        "batch_wait_s": 0.05,
        "kpi_interval_s": 0.5,
    }
    values.update(overrides)
    return CollectorConfig(**values)


def test_spool_records_reach_the_store_and_bad_ones_the_dead_letter_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "orders")
    good = [("callscope.spans", b"k", span_json("orders", i)) for i in range(500)]
    bad = [
        ("callscope.spans", b"k", b"{not json"),
        ("callscope.spans", b"k", span_json("orders", trace_id="XYZ")),
        ("callscope.spans", b"k", span_json("orders", schema=99)),
        ("callscope.other", b"k", b"{}"),
    ]
    spool.append(good[:250] + bad + good[250:] + [("callscope.kpis", b"orders", kpi_json())])
    cfg = config(tmp_path)
    with running(cfg) as collector:
        store = collector.span_store
        wait_for(lambda: store.count() == 500, 30, "500 spans stored")
        wait_for(lambda: collector.metrics.total("dlq") == 4, 10, "4 dead letters")
        assert collector.analytics.kpis("orders", BASE_US, BASE_US + 10**9)[0].count == 10
        with urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/metrics") as r:
            metrics = r.read().decode()
        assert "callscope_collector_stored_spans_total" in metrics
        assert 'callscope_collector_dlq_total{code="NOT_JSON"} 1' in metrics
        wait_for(lambda: collector.metrics.total("batches") >= 1, 5, "a committed batch")
    letters = [json.loads(line) for line in Path(cfg.dlq_file).read_text().splitlines()]
    by_code = {letter["code"]: letter for letter in letters}
    assert set(by_code) == {"NOT_JSON", "INVALID_FIELD", "UNSUPPORTED_SCHEMA", "UNKNOWN_TOPIC"}
    assert by_code["INVALID_FIELD"]["field"] == "trace_id"
    assert "lowercase hex" in by_code["INVALID_FIELD"]["reason"]
    assert by_code["NOT_JSON"]["value"] == "{not json"
    # Committed: a restarted collector reads nothing again, and its own KPIs were stored.
    spool.append([("callscope.spans", b"k", span_json("orders", 999))])
    with running(cfg) as collector:
        wait_for(lambda: collector.span_store.count() == 501, 30, "the one new span")
        assert collector.metrics.total("consumed") == 1
        own = collector.analytics.kpis("callscope-collector", 0, 2**62, role="process")
        assert own and "consumed" in own[0].counters
    spool.close()


class FlakyStore(SpanStore):
    """A SQLite store that is "down" for its first ``failures`` writes."""

    def __init__(self, inner: SpanStore, failures: int) -> None:
        self.inner, self.failures, self.calls = inner, failures, 0
        self.lock = threading.Lock()

    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        with self.lock:
            self.calls += 1
            if self.calls <= self.failures:
                raise StorageUnavailable("down for the test")
        self.inner.write_spans(spans)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    get_traces = find_trace_ids = services = operations = None  # type: ignore[assignment]
    delete_before = count = clear = None  # type: ignore[assignment]


for _name in ("get_traces", "find_trace_ids", "services", "operations", "delete_before",
              "count", "clear"):  # fmt: skip
    delattr(FlakyStore, _name)
FlakyStore.__abstractmethods__ = frozenset()


def test_a_failing_store_pauses_the_source_and_loses_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool" / "orders")
    spool.append([("callscope.spans", b"k", span_json("orders", i)) for i in range(300)])
    inner = open_span_store(f"sqlite://{tmp_path / 'store.db'}")
    flaky = FlakyStore(inner, failures=4)
    cfg = config(tmp_path, backoff_initial_s=0.05, backoff_max_s=0.2)
    from storage import open_analytics_store

    analytics = open_analytics_store(cfg.store_url)
    with running(cfg, span_store=flaky, analytics=analytics) as collector:
        wait_for(lambda: inner.count() == 300, 30, "300 spans after the outage")
        assert collector.metrics.total("retries") == 4
        assert collector.metrics.total("dlq") == 0
    inner.close()
    analytics.close()
    spool.close()


def test_otlp_json_spans_are_stored_and_bad_ones_answered_and_dead_lettered(
    tmp_path: Path,
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": [
            {"traceId": trace, "spanId": "00f067aa0ba902b7", "name": "GET /", "kind": 2,
             "startTimeUnixNano": str(BASE_US * 1000),
             "endTimeUnixNano": str(BASE_US * 1000 + 5_000_000),
             "attributes": [{"key": "http.route", "value": {"stringValue": "/"}},
                            {"key": "retries", "value": {"intValue": "2"}}],
             "status": {"code": 2, "message": "boom"}},
            {"traceId": "nothex", "spanId": "00f067aa0ba902b8", "name": "bad",
             "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
        ]}],
    }]}  # fmt: skip
    cfg = config(tmp_path, spool_dir=None)
    with running(cfg) as collector:
        request = urllib.request.Request(
            f"http://127.0.0.1:{collector.http_port}/v1/traces",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as r:
            answer = json.loads(r.read())
        assert answer["partialSuccess"]["rejectedSpans"] == 1
        assert "trace_id" in answer["partialSuccess"]["errorMessage"]
        trace_found = collector.span_store.get_trace(trace)
        assert trace_found is not None
        (span,) = trace_found.spans
        assert (span.service, span.kind, span.status, span.duration_us) == (
            "web",
            "SERVER",
            "ERROR",
            5000,
        )
        assert span.attributes["retries"] == 2 and span.error_message == "boom"
        assert collector.span_store.find_trace_ids(TraceQuery("web", tags={"http.route": "/"}))
    (letter,) = [json.loads(x) for x in Path(cfg.dlq_file).read_text().splitlines()]
    assert letter["code"] == "INVALID_FIELD" and letter["origin"] == {"source": "otlp"}
