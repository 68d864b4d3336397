"""The OTLP/gRPC intake: the Python SDK's gRPC exporter end to end, limits and status codes."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link

from collector import Collector
from storage import open_analytics_store

from .helpers import running
from .otlp import GatedStore, proto_request
from .test_embedded import config
from .test_otlp_exporter import make_spans

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    tmp = tmp_path_factory.mktemp("otlp-grpc")
    cfg = config(tmp, spool_dir=None, grpc_port=0, otlp_max_spans=100,
                 otlp_max_decompressed_bytes=1 << 20)  # fmt: skip
    with running(cfg) as running_collector:
        yield running_collector


def call(port: int, body: bytes, compression: grpc.Compression | None = None) -> bytes:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(EXPORT)
        return export(body, timeout=10, compression=compression)


def test_the_sdk_grpc_exporter_delivers_a_trace_with_its_links(collector: Collector) -> None:
    endpoint = f"127.0.0.1:{collector.grpc_port}"
    provider = TracerProvider(
        resource=Resource.create({"service.name": "grpc-shop", "deployment.environment": "ci"})
    )
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint, insecure=True)))
    sent = make_spans(provider)
    tracer = provider.get_tracer("callscope-tests")
    other = tracer.start_span("batch", links=[Link(tracer.start_span("msg").get_span_context())])
    other.end()
    provider.shutdown()
    trace = collector.span_store.get_trace(sent)  # acknowledged only once stored
    assert trace is not None and [s.name for s in trace.spans] == ["checkout", "charge"]
    assert trace.spans[1].status == "ERROR" and trace.spans[0].attributes["deployment.environment"]
    batch = collector.span_store.get_trace(format(other.get_span_context().trace_id, "032x"))
    assert batch is not None and len(batch.spans[0].links) == 1


def test_statuses_ok_invalid_and_too_large(collector: Collector) -> None:
    port = collector.grpc_port
    assert ExportTraceServiceResponse.FromString(call(port, b"")) == ExportTraceServiceResponse()
    with pytest.raises(grpc.RpcError) as invalid:
        call(port, b"\x0a\xff\xff\xff\xff\x0f")
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    too_many, _ = proto_request(spans=101)
    with pytest.raises(grpc.RpcError) as many:
        call(port, too_many.SerializeToString())
    assert many.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "google.rpc.retryinfo-bin" not in dict(many.value.trailing_metadata())  # final
    # Over the decompressed limit, even when it travels gzip-compressed in 10 KB.
    huge, _ = proto_request(spans=1, attributes={"blob": "x" * (2 << 20)})
    assert len(gzip.compress(huge.SerializeToString())) < 20_000
    with pytest.raises(grpc.RpcError) as big:
        call(port, huge.SerializeToString(), grpc.Compression.Gzip)
    assert big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    ok, trace_id = proto_request(spans=3)
    call(port, ok.SerializeToString(), grpc.Compression.Gzip)
    assert len(collector.span_store.get_trace(trace_id).spans) == 3


def test_an_unstored_or_busy_export_is_retryable_with_retry_info(tmp_path: Path) -> None:
    store = GatedStore(str(tmp_path / "gated.db"))
    analytics = open_analytics_store(f"sqlite://{tmp_path / 'gated.db'}")
    cfg = config(tmp_path, spool_dir=None, http_port=None, grpc_port=0,
                 otlp_max_waiting_requests=1, otlp_ack_timeout_s=1.0,
                 otlp_store_workers=1)  # fmt: skip
    with running(cfg, span_store=store, analytics=analytics) as collector:
        store.gate.clear()
        errors: dict[str, grpc.RpcError] = {}

        def send() -> None:
            request, trace = proto_request(spans=1)
            try:
                call(collector.grpc_port, request.SerializeToString())
            except grpc.RpcError as exc:
                errors[trace] = exc

        senders = [threading.Thread(target=send) for _ in range(6)]
        for sender in senders:
            sender.start()
            time.sleep(0.15)
        for sender in senders:
            sender.join(10)
        assert len(errors) == 6
        codes = {e.code() for e in errors.values()}
        assert codes <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert grpc.StatusCode.UNAVAILABLE in codes
        for error in errors.values():
            trailers = dict(error.trailing_metadata())
            assert RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay.seconds
            status = Status.FromString(trailers["grpc-status-details-bin"])
            assert status.code == error.code().value[0] and status.details
        store.gate.set()
        for trace, error in errors.items():  # taken in (UNAVAILABLE): stored after all
            if error.code() is grpc.StatusCode.UNAVAILABLE:
                deadline = time.monotonic() + 5
                while collector.span_store.get_trace(trace) is None:
                    assert time.monotonic() < deadline, "an accepted span was never stored"
                    time.sleep(0.05)
    analytics.close()
    store.close()
