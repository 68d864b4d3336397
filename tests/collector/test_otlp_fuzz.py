"""A seeded fuzzer of the OTLP intake: malformed protobuf and JSON under every header
variant (Content-Type, Content-Encoding, Content-Length, Transfer-Encoding), over HTTP and
gRPC. Every request gets an OTLP status (or, when its own framing is cut short, a closed
connection), and afterwards the server still serves, stores, and holds no bytes."""

from __future__ import annotations

import gzip
import json
import os
import random
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from collector import Collector

from .helpers import running
from .otlp import exchange, json_request, post, proto_request
from .test_embedded import config

SEED = 20261130
CASES = 300
STATUSES = {200, 400, 408, 411, 413, 415, 501, 503}
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

CONTENT_TYPES = [
    "application/x-protobuf", "application/json", "application/json; charset=utf-8",
    "APPLICATION/JSON", "application/protobuf", "", None, "text/plain", "multipart/form-data",
    "application/x-protobuf, application/json", "application/json\t;;;", "\xe9\x00x",
]  # fmt: skip
ENCODINGS = [None, "gzip", "GZIP", "deflate", "identity", "br", "gzip, gzip", "", "x-gzip", "zstd"]
FRAMINGS = ["length", "short", "long", "bad-length", "two-lengths", "chunked", "bad-chunk",
            "cut-chunks", "chunked+length", "gzip-chunked"]  # fmt: skip
TRUNCATED = {"long", "cut-chunks", "bad-chunk"}  # nobody may be left to answer


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    cfg = config(tmp_path_factory.mktemp("otlp-fuzz"), spool_dir=None, grpc_port=0,
                 otlp_max_body_bytes=256 << 10, otlp_max_decompressed_bytes=1 << 20,
                 otlp_max_spans=50)  # fmt: skip
    with running(cfg) as running_collector:
        yield running_collector


def _mutate_json(rng: random.Random, node: Any, depth: int = 0) -> Any:
    """The same tree with some nodes replaced by values of the wrong kind."""
    if rng.random() < 0.08:
        return rng.choice([5, -1, "x", [], {}, None, 1e308, True, "A" * 3000, [[[]]], {"k": 1}])
    if isinstance(node, dict):
        return {k: _mutate_json(rng, v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_mutate_json(rng, v, depth + 1) for v in node]
    return node


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(0, 6)):
        roll = rng.random()
        at = rng.randrange(len(data) + 1)
        if roll < 0.4 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif roll < 0.6:
            data[at:at] = os.urandom(rng.randint(1, 16))
        elif roll < 0.8:
            del data[at : at + rng.randint(1, 32)]
        else:
            data = data[:at]
    return bytes(data)


def _body(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.35:
        request, _ = proto_request(spans=rng.randint(0, 60))
        return _mutate_bytes(rng, request.SerializeToString())
    if kind < 0.7:
        data, _ = json_request(spans=rng.randint(0, 60))
        text = json.dumps(_mutate_json(rng, data)).encode()
        return _mutate_bytes(rng, text) if rng.random() < 0.3 else text
    if kind < 0.8:
        return gzip.compress(b"\0" * rng.choice([10, 1 << 20, 4 << 20]))  # small, and bombs
    return os.urandom(rng.randint(0, 2000))


def _encode(rng: random.Random, body: bytes, encoding: str | None) -> bytes:
    if encoding and "gzip" in encoding.lower() and rng.random() < 0.7:
        return gzip.compress(body)
    if encoding == "deflate" and rng.random() < 0.7:
        return zlib.compress(body)
    return body


def _request(rng: random.Random) -> tuple[bytes, bool]:
    """Raw request bytes, and whether their framing is cut short."""
    content_type, encoding = rng.choice(CONTENT_TYPES), rng.choice(ENCODINGS)
    framing = rng.choice(FRAMINGS)
    body = _encode(rng, _body(rng), encoding)
    head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    if encoding is not None:
        head += f"Content-Encoding: {encoding}\r\n"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in [body[:500], body[500:]] if p)
    if framing == "length":
        head, tail = head + f"Content-Length: {len(body)}\r\n", body
    elif framing == "short":
        head, tail = head + f"Content-Length: {len(body) // 2}\r\n", body
    elif framing == "long":
        head, tail = head + f"Content-Length: {len(body) + 100}\r\n", body
    elif framing == "bad-length":
        head += f"Content-Length: {rng.choice(['abc', '-1', '1e3', ' ', '0x10', '9' * 30])}\r\n"
        tail = body
    elif framing == "two-lengths":
        head, tail = head + f"Content-Length: {len(body)}\r\nContent-Length: 1\r\n", body
    elif framing == "chunked":
        head, tail = head + "Transfer-Encoding: chunked\r\n", chunks + b"0\r\n\r\n"
    elif framing == "bad-chunk":
        head, tail = head + "Transfer-Encoding: chunked\r\n", b"zz\r\n" + body
    elif framing == "cut-chunks":
        head, tail = head + "Transfer-Encoding: chunked\r\n", chunks
    elif framing == "chunked+length":
        head += f"Transfer-Encoding: chunked\r\nContent-Length: {len(body)}\r\n"
        tail = chunks + b"0\r\n\r\n"
    else:
        head, tail = head + "Transfer-Encoding: gzip, chunked\r\n", chunks + b"0\r\n\r\n"
    return head.encode("latin-1") + b"\r\n" + tail, framing in TRUNCATED


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_http_intake_answers_every_malformed_request_and_keeps_serving(
    collector: Collector,
) -> None:
    rng = random.Random(SEED)
    fds = _fds()
    seen: dict[int | None, int] = {}
    for case in range(CASES):
        raw, truncated = _request(rng)
        reply = exchange(collector.http_port, raw, shut=truncated)  # uvicorn: EOF = gone
        status = reply.status if reply else None
        seen[status] = seen.get(status, 0) + 1
        assert status in STATUSES or (status is None and truncated), (case, raw[:300], status)
    assert all(seen.get(status, 0) for status in (200, 400, 413, 415)), seen  # all paths taken
    assert collector.intake is not None and collector.intake.budget.held == 0
    request, trace_id = proto_request(spans=3)
    assert post(collector.http_port, request.SerializeToString(),
                {"Content-Type": "application/x-protobuf"}).status == 200  # fmt: skip
    assert len(collector.span_store.get_trace(trace_id).spans) == 3
    assert _fds() <= fds + 10  # no descriptor left behind by the attacks


def test_grpc_intake_answers_every_malformed_message_and_keeps_serving(
    collector: Collector, tmp_path: Path
) -> None:
    rng = random.Random(SEED + 1)
    allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
    with grpc.insecure_channel(f"127.0.0.1:{collector.grpc_port}") as channel:
        export = channel.unary_unary(EXPORT)
        for case in range(CASES // 2):
            body = _body(rng)
            compression = grpc.Compression.Gzip if rng.random() < 0.3 else None
            try:
                export(body, timeout=10, compression=compression)
            except grpc.RpcError as exc:
                assert exc.code() in allowed, (case, body[:200], exc.code())
        request, trace_id = proto_request(spans=2)
        export(request.SerializeToString(), timeout=10)
    assert len(collector.span_store.get_trace(trace_id).spans) == 2
    assert collector.intake is not None and collector.intake.budget.held == 0
