"""Spans from OpenTelemetry's own OTLP/HTTP exporter (``opentelemetry-exporter-otlp-proto-http``)
reach the store: as it sends them (protobuf) and as OTLP JSON made from its encoder."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from storage import TraceQuery

from .helpers import running
from .test_embedded import config


def make_spans(provider: TracerProvider) -> str:
    tracer = provider.get_tracer("callscope-tests")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/checkout")
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as child:
            child.set_attribute("peer.service", "billing")
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "card declined"))
    return format(root.get_span_context().trace_id, "032x")


def test_the_exporter_protobuf_and_its_json_are_stored_and_queryable(tmp_path: Path) -> None:
    with running(config(tmp_path, spool_dir=None)) as collector:
        url = f"http://127.0.0.1:{collector.http_port}/v1/traces"
        # 1. The exporter as an application would use it (protobuf over HTTP).
        provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url)))
        sent = make_spans(provider)
        provider.shutdown()
        trace = collector.span_store.get_trace(sent)
        assert trace is not None and [s.name for s in trace.spans] == ["checkout", "charge"]
        root, child = trace.spans
        assert child.parent_span_id == root.span_id and child.kind == "CLIENT"
        assert child.status == "ERROR" and child.error_message == "card declined"
        assert child.peer_service == "billing" and child.events[0].attributes == {"attempt": 2}
        assert collector.span_store.find_trace_ids(
            TraceQuery("shop", tags={"http.route": "/checkout"})
        ) == [sent]

        # 2. The same encoder's request as OTLP JSON.
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "shop-json"}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        sent_json = make_spans(provider)
        provider.shutdown()
        body = MessageToJson(encode_spans(memory.get_finished_spans())).encode()
        request = urllib.request.Request(url, data=body,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 200
        (found,) = collector.span_store.find_traces(TraceQuery("shop-json", errors_only=True))
        assert found.trace_id == sent_json and len(found.spans) == 2
