"""Spans of other OpenTelemetry-instrumented libraries (``requests``) join the RPC trace."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opentelemetry.instrumentation.requests import RequestsInstrumentor

import rpc
from instrument import Instrumentation, MemoryExporter


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        seen = self.headers.get("traceparent", "")
        body = seen.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@rpc.service("test.Fetch")
class Fetch:
    def __init__(self, url: str) -> None:
        self.url = url

    async def fetch(self) -> str:
        # to_thread copies the context, so the requests span finds the SERVER span
        response = await asyncio.to_thread(requests.get, self.url, timeout=5)
        return response.text


async def test_a_requests_call_in_a_handler_joins_the_trace(
    tracing: Instrumentation,
    memory: MemoryExporter,
    make_server: Any,
    make_client: Any,
    http_server: str,
) -> None:
    RequestsInstrumentor().instrument(tracer_provider=tracing.provider)
    try:
        server = await make_server(Fetch(http_server), interceptors=[tracing.server_interceptor])
        client = make_client([server.address], interceptors=[tracing.client_interceptor])
        traceparent = await client.proxy("test.Fetch").fetch()
    finally:
        RequestsInstrumentor().uninstrument()
    tracing.force_flush()
    spans = {s.kind + ":" + s.name.split("/")[-1]: s for s in memory.spans()}
    http_span = spans["CLIENT:GET"]
    server_span = spans["SERVER:fetch"]
    assert http_span.trace_id == server_span.trace_id
    assert http_span.parent_span_id == server_span.span_id
    assert traceparent == f"00-{http_span.trace_id}-{http_span.span_id}-01"  # W3C over HTTP
