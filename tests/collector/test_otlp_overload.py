"""More offered than the store takes: the intake answers 503 / RESOURCE_EXHAUSTED with a
retry delay, the official exporters (HTTP and gRPC) retry, and not one span is lost."""

from __future__ import annotations

import threading
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from storage import open_analytics_store

from .helpers import running
from .otlp import GatedStore
from .test_embedded import config

SENDERS, REQUESTS, SPANS = 12, 3, 50


def finished_spans(sender: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"load-{sender}"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("overload")
    for i in range(REQUESTS * SPANS):
        tracer.start_span(f"op{i % 7}").end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_overload_is_answered_with_retries_and_loses_no_span(tmp_path: Path) -> None:
    store = GatedStore(str(tmp_path / "slow.db"), delay_s=0.15)  # ~1,000 spans/s at most
    analytics = open_analytics_store(f"sqlite://{tmp_path / 'slow.db'}")
    cfg = config(tmp_path, spool_dir=None, grpc_port=0, batch_size=100,
                 otlp_max_waiting_requests=4, otlp_store_workers=1)  # fmt: skip
    with running(cfg, span_store=store, analytics=analytics) as collector:
        results: list[SpanExportResult] = []

        def send(sender: int) -> None:
            if sender % 2:
                exporter = GrpcExporter(f"127.0.0.1:{collector.grpc_port}", insecure=True,
                                        timeout=60)  # fmt: skip
            else:
                url = f"http://127.0.0.1:{collector.http_port}/v1/traces"
                exporter = HttpExporter(endpoint=url, timeout=60)
            spans = finished_spans(sender)
            for k in range(REQUESTS):
                results.append(exporter.export(spans[k * SPANS : (k + 1) * SPANS]))
            exporter.shutdown()

        senders = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(120)
        assert results == [SpanExportResult.SUCCESS] * SENDERS * REQUESTS
        assert store.count() == SENDERS * REQUESTS * SPANS  # every span, once
        metrics = collector.metrics.prometheus()
        assert 'otlp_requests_total{outcome="busy"}' in metrics  # refused, then retried
    analytics.close()
    store.close()
