"""OTLP requests to send, raw HTTP exchanges, and store doubles for the intake tests."""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from instrument.model import SpanRecord
from storage import RejectedSpans
from storage.sqlite import SqliteSpanStore

from .helpers import BASE_US


def kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def proto_request(
    service: str = "shop",
    spans: int = 2,
    trace_id: bytes | None = None,
    resource: dict[str, object] | None = None,
    attributes: dict[str, object] | None = None,
    links: Sequence[Span.Link] = (),
) -> tuple[ExportTraceServiceRequest, str]:
    """A request of ``spans`` spans of one trace; and that trace's id (hex)."""
    trace_id = trace_id or os.urandom(16)
    made = []
    for i in range(spans):
        made.append(
            Span(
                trace_id=trace_id,
                span_id=os.urandom(8),
                name=f"op{i}",
                kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=(BASE_US + i) * 1000,
                end_time_unix_nano=(BASE_US + i + 50) * 1000,
                attributes=[kv(k, v) for k, v in (attributes or {}).items()],
                links=list(links),
            )
        )
    attrs = {"service.name": service, **(resource or {})}
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": [kv(k, v) for k, v in attrs.items()]},
                scope_spans=[ScopeSpans(scope={"name": "tests"}, spans=made)],
            )
        ]
    )
    return request, trace_id.hex()


def json_request(service: str = "shop", spans: int = 2) -> tuple[dict[str, Any], str]:
    trace = os.urandom(16).hex()
    made = [
        {"traceId": trace, "spanId": os.urandom(8).hex(), "name": f"op{i}", "kind": 2,
         "startTimeUnixNano": str((BASE_US + i) * 1000),
         "endTimeUnixNano": str((BASE_US + i + 50) * 1000)}
        for i in range(spans)
    ]  # fmt: skip
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "tests"}, "spans": made}],
    }]}  # fmt: skip
    return body, trace


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def exchange(port: int, raw: bytes, timeout_s: float = 10.0, shut: bool = True) -> Reply | None:
    """Send raw bytes as one HTTP request; the reply, or None when the server closed first."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(raw)
            if shut:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            return None  # refused mid-send (e.g. an over-limit body, answered and closed)
        response = http.client.HTTPResponse(sock)
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, ConnectionError):
            return None
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def post(port: int, body: bytes, headers: dict[str, str], chunked: bool = False) -> Reply:
    """A well-framed POST /v1/traces (Content-Length, or chunked without it)."""
    head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body)}\r\n\r\n"
        framed = body
    reply = exchange(port, head.encode() + framed, shut=False)
    assert reply is not None, "no HTTP answer"
    return reply


class GatedStore(SqliteSpanStore):
    """SQLite whose writes wait for :attr:`gate`, refusing for good the spans named ``refuse``."""

    def __init__(self, path: str, refuse: str = "", hold: str = "", delay_s: float = 0) -> None:
        super().__init__(path)
        self.refuse, self.hold, self.delay_s = refuse, hold, delay_s
        self.gate = threading.Event()  # every write waits for it
        self.held = threading.Event()  # writes with a span named ``hold`` wait for it too
        self.gate.set()

    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        self.gate.wait(30)
        time.sleep(self.delay_s)
        if any(s.name == self.hold for s in spans):
            self.held.wait(30)
        refused = {i: "mapping conflict" for i, s in enumerate(spans) if s.name == self.refuse}
        super().write_spans([s for s in spans if s.name != self.refuse])
        if refused:
            raise RejectedSpans(refused)
