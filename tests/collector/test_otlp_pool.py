"""``workers`` > 1: every worker serves OTLP on the shared ports (SO_REUSEPORT)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import grpc

from collector import CollectorPool
from storage import open_span_store

from .helpers import wait_for
from .otlp import post, proto_request
from .test_embedded import config

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_every_worker_serves_otlp_http_and_grpc(tmp_path: Path) -> None:
    pool = CollectorPool(config(tmp_path, spool_dir=None, workers=2, grpc_port=0)).start()
    try:
        assert pool.http_port and pool.grpc_port
        wait_for(lambda: listening(pool.http_port), 60, "a worker listening")
        traces = []
        deadline = time.monotonic() + 60
        while not all(pool.count(i, "stored_spans") for i in range(2)):  # new connections
            assert time.monotonic() < deadline, "one worker never served a request"
            request, trace_id = proto_request(spans=5)
            if len(traces) % 2:
                with grpc.insecure_channel(f"127.0.0.1:{pool.grpc_port}") as channel:
                    channel.unary_unary(EXPORT)(request.SerializeToString(), timeout=30)
            else:
                reply = post(pool.http_port, request.SerializeToString(),
                             {"Content-Type": "application/x-protobuf"})  # fmt: skip
                assert reply.status == 200
            traces.append(trace_id)
            if len(traces) > 8:
                wait_for(lambda: pool.total("stored_spans") == 5 * len(traces), 10, "counts")
    finally:
        assert pool.stop() == 0
    store = open_span_store(f"sqlite://{tmp_path / 'store.db'}")
    assert all(len(store.get_trace(t).spans) == 5 for t in traces)  # acknowledged = stored
    store.close()
