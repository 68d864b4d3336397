"""The collector's HTTP face on 127.0.0.1 (stdlib ``http.server``, a thread per request):
``POST /v1/traces`` (OTLP/HTTP, JSON or protobuf), ``GET /metrics``, ``GET /healthz``."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._metrics import CollectorMetrics
from ._otlp import OtlpError, decode_request
from ._otlp_source import OtlpSource

__all__ = ["CollectorHttpServer"]

log = logging.getLogger("callscope.collector.http")

MAX_BODY = 16 << 20


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _answer(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _text(self, status: int, text: str, **headers: str) -> None:
        self._answer(status, text.encode(), "text/plain; charset=utf-8", **headers)

    def do_GET(self) -> None:
        if self.path == "/metrics":
            body = self.server.metrics.prometheus().encode()
            self._answer(200, body, "text/plain; version=0.0.4; charset=utf-8")
        elif self.path == "/healthz":
            self._text(200, "ok\n")
        else:
            self._text(404, "not found\n")

    def do_POST(self) -> None:
        if self.path != "/v1/traces" or self.server.otlp is None:
            self._text(404, "not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._text(413, f"body over {MAX_BODY} bytes\n", Connection="close")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "application/json")
        try:
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = decode_request(body, content_type)
        except (OtlpError, OSError, EOFError) as exc:
            self._text(400, f"{exc}\n")
            return
        ticket = self.server.otlp.submit(request)
        if ticket is None:
            self._text(503, "collector busy\n", Retry_After="1")
            return
        if not ticket.done.wait(self.server.ack_timeout_s):
            self._text(503, "store unavailable; retry\n", Retry_After="2")
            return
        self._ok(content_type, ticket.rejected)

    def _ok(self, content_type: str, rejected: list[str]) -> None:
        """An ``ExportTraceServiceResponse``; partial success names the rejected spans."""
        partial = {"rejectedSpans": len(rejected), "errorMessage": "; ".join(rejected)[:2000]}
        if "protobuf" in content_type:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTracePartialSuccess,
                ExportTraceServiceResponse,
            )

            response = ExportTraceServiceResponse()
            if rejected:
                response.partial_success.CopyFrom(
                    ExportTracePartialSuccess(
                        rejected_spans=len(rejected), error_message=str(partial["errorMessage"])
                    )
                )
            self._answer(200, response.SerializeToString(), "application/x-protobuf")
        else:
            data = {"partialSuccess": partial} if rejected else {}
            self._answer(200, json.dumps(data).encode(), "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    metrics: CollectorMetrics
    otlp: OtlpSource | None
    ack_timeout_s: float


class CollectorHttpServer:
    """Serves in a background thread; port 0 picks a free one (see :attr:`port`)."""

    def __init__(
        self,
        metrics: CollectorMetrics,
        otlp: OtlpSource | None,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        ack_timeout_s: float = 10.0,
    ) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.metrics = metrics
        self._server.otlp = otlp
        self._server.ack_timeout_s = ack_timeout_s
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="callscope-collector-http", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> CollectorHttpServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
