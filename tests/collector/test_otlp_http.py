"""The OTLP/HTTP intake: framing, limits and the OTLP status of every answer (issue 10)."""

from __future__ import annotations

import gzip
import http.client
import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector import Collector, CollectorHttpServer, CollectorMetrics
from storage import open_analytics_store

from .helpers import running
from .otlp import GatedStore, Reply, exchange, json_request, post, proto_request
from .test_embedded import config

PROTO = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    tmp = tmp_path_factory.mktemp("otlp-http")
    with running(config(tmp, spool_dir=None)) as running_collector:
        yield running_collector


def stored(collector: Collector, trace_id: str, spans: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        trace = collector.span_store.get_trace(trace_id)
        if (len(trace.spans) if trace else 0) == spans:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("gzipped", [False, True])
def test_chunked_bodies_without_content_length_are_stored(
    collector: Collector, gzipped: bool
) -> None:
    request, trace_id = proto_request(spans=3)
    body = request.SerializeToString()
    headers = dict(PROTO)
    if gzipped:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    reply = post(collector.http_port, body, headers, chunked=True)
    assert reply.status == 200
    assert ExportTraceServiceResponse.FromString(reply.body).partial_success.rejected_spans == 0
    assert stored(collector, trace_id, 3, timeout_s=0.1)  # acknowledged after the write

    data, json_trace = json_request(spans=2)
    reply = post(collector.http_port, json.dumps(data).encode(), JSON, chunked=True)
    assert reply.status == 200 and json.loads(reply.body) == {}
    assert stored(collector, json_trace, 2, timeout_s=0.1)


@pytest.mark.parametrize(
    ("body", "headers"),
    [(b'{"resourceSpans":[]}', JSON), (b"{}", JSON), (b"", PROTO)],
)
def test_empty_requests_are_answered_200_at_once(
    collector: Collector, body: bytes, headers: dict[str, str]
) -> None:
    started = time.monotonic()
    reply = post(collector.http_port, body, headers)
    assert reply.status == 200 and time.monotonic() - started < 2


@pytest.mark.parametrize(
    "body",
    [b'{"resourceSpans":5}', b'{"resourceSpans":[5]}', b'{"resourceSpans":[{"scopeSpans":{}}]}',
     b'{"resourceSpans":[{"scopeSpans":[{"spans":"x"}]}]}', b"[]", b'"x"', b"{", b"\xff\xfe",
     b"[" * 5000 + b"]" * 5000, b""],
)  # fmt: skip
def test_json_of_the_wrong_shape_is_400_with_a_status(collector: Collector, body: bytes) -> None:
    reply = post(collector.http_port, body, JSON)
    assert reply.status == 400, reply.body
    assert json.loads(reply.body)["code"] == 3  # google.rpc.Code.INVALID_ARGUMENT


def test_a_malformed_protobuf_is_400_with_a_protobuf_status(collector: Collector) -> None:
    reply = post(collector.http_port, b"\x0a\xff\xff\xff\xff\x0f", PROTO)
    assert reply.status == 400
    assert Status.FromString(reply.body).code == 3


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "12, 13", " "])
def test_a_bad_content_length_is_400_and_the_server_keeps_serving(
    collector: Collector, length: str
) -> None:
    raw = (
        f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n{{}}"
    ).encode()
    reply = exchange(collector.http_port, raw)
    assert reply is not None and reply.status == 400
    assert post(collector.http_port, b"{}", JSON).status == 200


def test_a_gzip_bomb_is_refused_413_without_inflating_it(collector: Collector) -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    assert len(bomb) < 70_000
    started = time.monotonic()
    reply = post(collector.http_port, bomb, PROTO | {"Content-Encoding": "gzip"})
    assert reply.status == 413, reply.body
    assert "inflates past" in Status.FromString(reply.body).message
    assert time.monotonic() - started < 2  # inflating all 64 MiB takes longer here
    assert collector.intake is not None and collector.intake.budget.held == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Content-Type": "text/plain"}, 415), ({}, 415),
     (PROTO | {"Content-Encoding": "br"}, 415), (PROTO | {"Content-Encoding": "gzip"}, 400)],
)  # fmt: skip
def test_unsupported_media_and_encodings(
    collector: Collector, headers: dict[str, str], status: int
) -> None:
    request, _ = proto_request(spans=1)
    assert post(collector.http_port, request.SerializeToString(), headers).status == status


def test_keep_alive_serves_many_requests_on_one_connection(collector: Collector) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=10)
    traces = []
    for _ in range(3):
        request, trace_id = proto_request(spans=1)
        connection.request("POST", "/v1/traces", request.SerializeToString(), PROTO)
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200 and answer.getheader("connection") != "close"
        traces.append(trace_id)
    sock = connection.sock
    connection.request("GET", "/healthz")
    assert connection.getresponse().read() == b"ok\n" and connection.sock is sock
    connection.close()
    assert all(collector.span_store.get_trace(t) for t in traces)


def test_links_resource_attributes_and_non_finite_numbers_are_kept(
    collector: Collector, tmp_path: Path
) -> None:
    linked, _ = proto_request(spans=1)
    target = linked.resource_spans[0].scope_spans[0].spans[0]
    link = Span.Link(trace_id=target.trace_id, span_id=target.span_id, trace_state="v=1")
    request, trace_id = proto_request(
        spans=1,
        resource={"deployment.environment": "ci", "service.version": "1.2"},
        attributes={"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "ok": 1.5},
        links=[link],
    )
    assert post(collector.http_port, request.SerializeToString(), PROTO).status == 200
    (span,) = collector.span_store.get_trace(trace_id).spans
    assert span.attributes["deployment.environment"] == "ci"
    assert span.attributes["service.version"] == "1.2"
    assert (span.attributes["nan"], span.attributes["inf"], span.attributes["ninf"]) == (
        "NaN", "Infinity", "-Infinity",
    )  # fmt: skip
    assert span.attributes["ok"] == 1.5
    (kept,) = span.links
    assert (kept.trace_id, kept.span_id, kept.trace_state) == (
        target.trace_id.hex(), target.span_id.hex(), "v=1",
    )  # fmt: skip
    # `callscope trace --json` prints valid JSON (no bare NaN / Infinity).
    printed = subprocess.run(
        [sys.executable, "-m", "callscope", "trace", trace_id, "--json",
         "--store", collector.config.store_url],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    (record,) = [json.loads(line, parse_constant=refuse) for line in printed.splitlines()]
    assert record["links"][0]["span_id"] == target.span_id.hex()


def test_a_slow_store_write_does_not_hold_back_other_requests(tmp_path: Path) -> None:
    store = GatedStore(str(tmp_path / "held.db"), hold="op0")
    analytics = open_analytics_store(f"sqlite://{tmp_path / 'held.db'}")
    with running(config(tmp_path, spool_dir=None), span_store=store, analytics=analytics) as c:
        slow, slow_trace = proto_request(spans=1)  # its span is named op0: its write waits
        answers: list[Reply] = []
        sender = threading.Thread(
            target=lambda: answers.append(post(c.http_port, slow.SerializeToString(), PROTO))
        )
        sender.start()
        time.sleep(0.3)
        fast, fast_trace = proto_request(spans=2)
        fast.resource_spans[0].scope_spans[0].spans.pop(0)  # no op0 in it
        assert post(c.http_port, fast.SerializeToString(), PROTO).status == 200
        assert stored(c, fast_trace, 1, timeout_s=0.1) and not answers
        store.held.set()
        sender.join(10)
        assert answers[0].status == 200 and stored(c, slow_trace, 1, timeout_s=0.1)
    analytics.close()
    store.close()


def test_limits_spans_and_bodies_413_and_busy_or_unstored_503(tmp_path: Path) -> None:
    store = GatedStore(str(tmp_path / "gated.db"), refuse="op1")
    analytics = open_analytics_store(f"sqlite://{tmp_path / 'gated.db'}")
    cfg = config(tmp_path, spool_dir=None, otlp_max_spans=10, otlp_max_body_bytes=64 << 10,
                 otlp_max_waiting_requests=1, otlp_ack_timeout_s=1.0,
                 otlp_store_workers=1)  # fmt: skip
    with running(cfg, span_store=store, analytics=analytics) as collector:
        port = collector.http_port
        too_many, _ = proto_request(spans=11)
        assert post(port, too_many.SerializeToString(), PROTO).status == 413
        big = b"{" + b" " * (65 << 10) + b"}"
        assert post(port, big, JSON).status == 413
        assert post(port, big, JSON, chunked=True).status == 413

        # The store refuses one span for good: a partial success names it, never a plain 200.
        request, _ = proto_request(spans=2)
        reply = post(port, request.SerializeToString(), PROTO)
        partial = ExportTraceServiceResponse.FromString(reply.body).partial_success
        assert reply.status == 200 and partial.rejected_spans == 1
        assert "STORE_REJECTED" in partial.error_message

        # A store that does not answer in time: 503 + Retry-After for every request, and
        # once the worker's batches in flight and the waiting room are full: busy at once.
        store.gate.clear()
        requests = [proto_request(spans=1) for _ in range(6)]
        answers: dict[str, Reply] = {}

        def send(request: ExportTraceServiceRequest, trace: str) -> None:
            answers[trace] = post(port, request.SerializeToString(), PROTO)

        senders = [threading.Thread(target=send, args=r) for r in requests]
        for sender in senders:
            sender.start()
            time.sleep(0.15)
        for sender in senders:
            sender.join(10)
        assert sorted(a.status for a in answers.values()) == [503] * 6
        delays = {trace: a.headers["retry-after"] for trace, a in answers.items()}
        assert set(delays.values()) == {"1", "2"}  # busy, and taken in but not stored in time
        assert {Status.FromString(a.body).code for a in answers.values()} == {8, 14}
        store.gate.set()
        for trace, delay in delays.items():  # what was taken in is stored later, once
            assert stored(
                collector, trace, 1 if delay == "2" else 0, timeout_s=5 if delay == "2" else 0.1
            )
    analytics.close()
    store.close()


def test_a_client_trickling_a_request_head_is_cut_off() -> None:
    server = CollectorHttpServer(CollectorMetrics(), None, port=0, head_timeout_s=0.5).start()
    try:
        address = ("127.0.0.1", server.port)
        with (
            socket.create_connection(address, 5) as idle,
            socket.create_connection(address, 5) as slow,
        ):
            slow.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            started = time.monotonic()
            assert idle.recv(1) == b"" and slow.recv(1) == b""  # closed by the server
            assert time.monotonic() - started < 3
        # A keep-alive connection gets the same deadline for its next head, not before.
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b"ok\n"
        connection.request("GET", "/healthz")  # well within the deadline: served
        assert connection.getresponse().read() == b"ok\n"
        connection.close()
    finally:
        server.close()
