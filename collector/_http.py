"""The collector's HTTP face: ``POST /v1/traces`` (OTLP/HTTP, protobuf or JSON, gzip or
deflate), ``GET /metrics`` (Prometheus text), ``GET /healthz``.

Served by uvicorn + Starlette on one event-loop thread, with uvicorn's h11 protocol: HTTP
framing (Content-Length or chunked, as the OpenTelemetry JavaScript exporter sends),
keep-alive and malformed requests are handled by code made for them, and h11 bounds a
request head (16 KiB). Measured on this machine (4 keep-alive senders, 60 KB bodies):
uvicorn/h11 ~2,000 requests/s at ~235 us of CPU a request; uvicorn/httptools ~2,400 at
~110 us but it holds request heads without bound (100 MB of headers kept); aiohttp
~750-840 at ~140 us. At 500 spans a request the HTTP layer is under 1% of a span's cost,
so the bounded parser wins.

Limits (see :class:`~collector.CollectorConfig`): the body as received and once
decompressed, spans per request, bytes held by all requests in flight, a deadline for the
body, a deadline for each request head (:class:`_H11WithHeadDeadline`), connections at
once (past it uvicorn answers 503). Every answer is the OTLP status
(:mod:`._otlp_intake`); errors carry a ``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._metrics import CollectorMetrics
from ._otlp_body import BadBody, BodyTooLarge, OverBudget, UnsupportedEncoding
from ._otlp_intake import Answer, OtlpIntake, Outcome

__all__ = ["CollectorHttpServer"]

log = logging.getLogger("callscope.collector.http")

PROTOBUF = ("application/x-protobuf", "application/protobuf")
JSON = "application/json"
BODY_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 512
KEEP_ALIVE_S = 30
MAX_HEAD_BYTES = 16 << 10
DRAIN_S = 5.0  # how long an early error answer keeps reading what the client still sends
HEAD_TIMEOUT_S = 30.0  # a connection's next request head must arrive whole within this

_HTTP = {
    Outcome.OK: 200,
    Outcome.INVALID: 400,
    Outcome.TOO_LARGE: 413,
    Outcome.UNSUPPORTED: 415,
    Outcome.BUSY: 503,
    Outcome.UNAVAILABLE: 503,
}
_RPC_CODE = {  # google.rpc.Code, for the Status body
    Outcome.INVALID: 3,
    Outcome.TOO_LARGE: 8,
    Outcome.UNSUPPORTED: 3,
    Outcome.BUSY: 8,
    Outcome.UNAVAILABLE: 14,
}


def _respond(answer: Answer, proto: bool, *, close: bool = False) -> Response:
    headers = {"Connection": "close"} if close else {}
    if answer.retry_after_s:
        headers["Retry-After"] = str(answer.retry_after_s)
    media = PROTOBUF[0] if proto else JSON
    if answer.outcome is Outcome.OK:
        return Response(_success(answer.rejected, proto), 200, headers, media)
    code, message = _RPC_CODE[answer.outcome], answer.message[:2000]
    if proto:
        body = Status(code=code, message=message).SerializeToString()
    else:
        body = orjson.dumps({"code": code, "message": message})
    return Response(body, _HTTP[answer.outcome], headers, media)


def _success(rejected: list[str], proto: bool) -> bytes:
    """An ``ExportTraceServiceResponse``; a partial success counts and names the rejected."""
    error = "; ".join(rejected)[:2000]
    if proto:
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=len(rejected), error_message=error)
            )
        return response.SerializeToString()
    partial = {"partialSuccess": {"rejectedSpans": len(rejected), "errorMessage": error}}
    return orjson.dumps(partial if rejected else {})


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


class _Incoming:
    """A request body as it arrives (ASGI messages), and whether it has ended."""

    def __init__(self, request: Request) -> None:
        self.receive, self.ended = request.receive, False

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.ended:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self.ended = not message.get("more_body", False)
            yield message.get("body", b"")

    async def drain(self, limit: int) -> bool:
        """Read and drop the rest (at most ``limit`` bytes, ``DRAIN_S``), so an early answer
        reaches a client that is still sending instead of a reset; True if the body ended."""
        taken = 0
        try:
            async with asyncio.timeout(DRAIN_S):
                async for chunk in self.chunks():
                    taken += len(chunk)
                    if taken > limit:
                        return False
        except (TimeoutError, ClientDisconnect):
            return False
        return True


async def _refuse(incoming: _Incoming, answer: Answer, proto: bool, limit: int) -> Response:
    """An error answer before the body was read whole: drain it, else close the link."""
    return _respond(answer, proto, close=not await incoming.drain(limit))


async def _traces(request: Request) -> Response:
    intake: OtlpIntake = request.app.state.intake
    cfg = intake.config
    incoming = _Incoming(request)
    media = _media(request)
    proto = media in PROTOBUF
    if not proto and media != JSON:
        answer = Answer(Outcome.UNSUPPORTED, f"Content-Type {media or 'missing'!r}: use "
                        "application/x-protobuf or application/json")  # fmt: skip
        return await _refuse(incoming, intake.count(answer), False, cfg.otlp_max_body_bytes)
    length = int(request.headers.get("content-length") or 0)  # h11 checked it: digits
    if length > cfg.otlp_max_body_bytes:
        too_large = Answer(Outcome.TOO_LARGE, f"body over {cfg.otlp_max_body_bytes} bytes")
        drain = cfg.otlp_max_body_bytes if length <= 2 * cfg.otlp_max_body_bytes else 0
        return await _refuse(incoming, intake.count(too_large), proto, drain)
    try:
        body = intake.body(request.headers.get("content-encoding", ""))
    except UnsupportedEncoding as exc:
        answer = intake.count(Answer(Outcome.UNSUPPORTED, str(exc)))
        return await _refuse(incoming, answer, proto, cfg.otlp_max_body_bytes)
    try:
        try:
            async with asyncio.timeout(request.app.state.body_timeout_s):
                async for chunk in incoming.chunks():
                    body.feed(chunk)
            data = body.finish()
        except (BodyTooLarge, BadBody, OverBudget) as exc:
            body.release()
            answer = Answer(_OUTCOME_OF[type(exc)], str(exc), retry_after_s=1 if
                            isinstance(exc, OverBudget) else 0)  # fmt: skip
            return await _refuse(incoming, intake.count(answer), proto, cfg.otlp_max_body_bytes)
        except TimeoutError:
            return PlainTextResponse("request body too slow\n", 408, {"Connection": "close"})
        except ClientDisconnect:
            return PlainTextResponse("", 400)  # nobody is left to read it
        answer = await intake.export_async(data, media)
    finally:
        body.release()
    return _respond(answer, proto)


_OUTCOME_OF = {BodyTooLarge: Outcome.TOO_LARGE, BadBody: Outcome.INVALID, OverBudget: Outcome.BUSY}


async def _metrics(request: Request) -> Response:
    text = request.app.state.metrics.prometheus()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok\n")


def _app(metrics: CollectorMetrics, intake: OtlpIntake | None, body_timeout_s: float) -> Any:
    routes = [Route("/metrics", _metrics), Route("/healthz", _healthz)]
    if intake is not None:
        routes.append(Route("/v1/traces", _traces, methods=["POST"]))
    app = Starlette(routes=routes)
    app.state.metrics, app.state.intake, app.state.body_timeout_s = metrics, intake, body_timeout_s
    return app


class _H11WithHeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request head: uvicorn times out an
    idle keep-alive connection but not a client that trickles a head byte by byte (or sends
    nothing), and such clients would hold connection slots until none is left."""

    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_head()

    def _expect_head(self) -> None:
        waiting_for = self.cycle  # a new head makes a new cycle
        self.loop.call_later(self.head_timeout_s, self._head_overdue, waiting_for)

    def _head_overdue(self, waiting_for: object) -> None:
        if self.cycle is waiting_for and not self.transport.is_closing():
            self.transport.close()


class CollectorHttpServer:
    """Serves on its own event-loop thread; port 0 picks a free one (see :attr:`port`)."""

    def __init__(
        self,
        metrics: CollectorMetrics,
        intake: OtlpIntake | None,
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        body_timeout_s: float = BODY_TIMEOUT_S,
        head_timeout_s: float = HEAD_TIMEOUT_S,
        reuse_port: bool = False,
    ) -> None:
        self._sock = socket.create_server((host, port), reuse_port=reuse_port)
        protocol = type("Http", (_H11WithHeadDeadline,), {"head_timeout_s": head_timeout_s})
        config = uvicorn.Config(
            _app(metrics, intake, body_timeout_s),
            http=protocol,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]},
            name="callscope-collector-http", daemon=True,
        )  # fmt: skip

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def start(self, timeout_s: float = 10.0) -> CollectorHttpServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the collector's HTTP server did not start on {self.port}")
            time.sleep(0.01)
        return self

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
