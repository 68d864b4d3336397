"""OTLP/gRPC: ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` (grpcio).

The default transport of many OpenTelemetry SDKs (port 4317). The method is registered
with raw bytes in and out, so the request is decoded once, by the same code as OTLP/HTTP
protobuf (:mod:`._otlp_intake`), under the same limits: grpcio refuses a message larger
than the decompressed limit (checked after decompression) with RESOURCE_EXHAUSTED; at
most ``MAX_CALLS`` calls are queued or running (grpcio answers RESOURCE_EXHAUSTED past
that); the messages held count against the intake's byte budget. Answers follow the OTLP
table: OK (with ``partial_success``), INVALID_ARGUMENT, RESOURCE_EXHAUSTED (final, or
with ``RetryInfo`` when busy) and UNAVAILABLE with ``RetryInfo``. The retry delay rides
both in ``grpc-status-details-bin`` (``google.rpc.Status`` details, read by the Go
Collector's exporters) and in the ``google.rpc.retryinfo-bin`` trailer (read by the
Python SDK's exporter).
"""

from __future__ import annotations

from concurrent import futures
from typing import Any, NamedTuple

import grpc
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from ._otlp_body import OverBudget
from ._otlp_intake import Answer, OtlpIntake, Outcome

__all__ = ["CollectorGrpcServer"]

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
THREADS = 32  # each waits for its spans to be stored, mostly idle
MAX_CALLS = 256  # calls queued or running; past it grpcio answers RESOURCE_EXHAUSTED itself

_CODES = {
    Outcome.INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    Outcome.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Outcome.UNSUPPORTED: grpc.StatusCode.INVALID_ARGUMENT,
    Outcome.BUSY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Outcome.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


class _Failure(NamedTuple):  # a grpc.Status: what ``context.abort_with_status`` takes
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, bytes], ...]


def _failure(answer: Answer) -> _Failure:
    code = _CODES[answer.outcome]
    status = Status(code=code.value[0], message=answer.message[:2000])
    trailers: list[tuple[str, bytes]] = []
    if answer.retry_after_s:
        retry = RetryInfo(retry_delay=Duration(seconds=answer.retry_after_s))
        detail = AnyMessage()
        detail.Pack(retry)
        status.details.append(detail)
        trailers.append(("google.rpc.retryinfo-bin", retry.SerializeToString()))
    trailers.append(("grpc-status-details-bin", status.SerializeToString()))
    return _Failure(code, status.message, tuple(trailers))


class CollectorGrpcServer:
    """Serves on grpcio's threads; port 0 picks a free one (see :attr:`port`)."""

    def __init__(
        self, intake: OtlpIntake, *, host: str = "127.0.0.1", port: int = 4317,
        reuse_port: bool = False,
    ) -> None:  # fmt: skip
        self.intake = intake
        cfg = intake.config
        self._server = grpc.server(
            futures.ThreadPoolExecutor(THREADS, thread_name_prefix="otlp-grpc"),
            maximum_concurrent_rpcs=MAX_CALLS,
            options=[
                ("grpc.max_receive_message_length", cfg.otlp_max_decompressed_bytes),
                ("grpc.so_reuseport", int(reuse_port)),  # grpcio's default is on: one owner
            ],
        )
        handler = grpc.unary_unary_rpc_method_handler(self._export)  # bytes in, bytes out
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
        )
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if not self.port:
            raise OSError(f"cannot listen for OTLP/gRPC on {host}:{port}")

    def _export(self, request: bytes, context: Any) -> bytes:
        try:
            self.intake.budget.take(len(request))  # what grpcio holds counts like HTTP bodies
        except OverBudget as exc:
            context.abort_with_status(_failure(Answer(Outcome.BUSY, str(exc), retry_after_s=1)))
        try:
            answer = self.intake.export(request, "application/x-protobuf")
        finally:
            self.intake.budget.give(len(request))
        if answer.outcome is not Outcome.OK:
            context.abort_with_status(_failure(answer))
        response = ExportTraceServiceResponse()
        if answer.rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(
                    rejected_spans=len(answer.rejected),
                    error_message="; ".join(answer.rejected)[:2000],
                )
            )
        return response.SerializeToString()

    def start(self) -> CollectorGrpcServer:
        self._server.start()
        return self

    def close(self, grace_s: float = 5.0) -> None:
        self._server.stop(grace_s).wait(grace_s + 1)
