"""OTLP ingest into Elasticsearch: ``callscope collector`` against Jaeger v2, same run.

``--spans N`` spans (traces of 10 spans over 5 services, 6 attributes each, an event on
every fifth) are sent as OTLP protobuf, ``--per-request`` spans a request, by
``--senders`` processes (keep-alive HTTP, or gRPC with ``--protocol grpc``), each waiting
for its answer before the next request (as an SDK's batch exporter does) and retrying
503 / UNAVAILABLE / RESOURCE_EXHAUSTED after the delay the server asks for. The clock
runs from the first request to the moment all N spans are searchable (``_count`` on the
target's indices, no forced refresh; 1 shard, 0 replicas, 1 s refresh for both).

Targets: ``callscope collector --workers W`` (a subprocess, acknowledging after the bulk
write) and, when ``--jaeger BIN`` (or ``$JAEGER_BIN``) names a Jaeger v2 binary, Jaeger
with its OTLP receiver and Elasticsearch storage (``--jaeger-bulk-workers``, default 2).
CPU per span is the target process tree's user + system time over N. ``lost`` counts
spans the senders had acknowledged that never became searchable (plus any they gave up on).

    python benchmarks/otlp_ingest.py --spans 200000 --jaeger ~/.cache/callscope/jaeger
    python benchmarks/otlp_ingest.py --spans 100000 --workers 2 --protocol grpc

``--rounds R`` alternates the two targets R times and reports the median round of each.
The last line is one JSON object: ``spans_per_s``, ``peer_spans_per_s``,
``ratio_vs_jaeger``, ``cpu_us_per_span``, ``peer_cpu_us_per_span``, ``lost``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
ES = os.environ.get("CALLSCOPE_BENCH_ES", "http://127.0.0.1:9200")
SERVICES = ["gateway", "orders", "billing", "stock", "users"]
GIVE_UP_S = 120.0


# -- the load --------------------------------------------------------------------------------
def make_requests(seed: int, spans: int, per_request: int) -> list[bytes]:
    """Serialized ``ExportTraceServiceRequest`` bodies holding ``spans`` spans in all."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    def kv(key: str, value: object) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=str(value)))

    rng = random.Random(seed)
    now_ns = time.time_ns()
    bodies, made = [], 0
    while made < spans:
        count = min(per_request, spans - made)
        by_service: dict[str, list[Span]] = {}
        trace_id = span_id = b""
        for i in range(count):
            if (made + i) % 10 == 0:
                trace_id = rng.randbytes(16)
            parent, span_id = span_id, rng.randbytes(8)
            service = SERVICES[(made + i) % 5]
            start = now_ns - rng.randrange(3_600_000_000_000)
            span = Span(
                trace_id=trace_id, span_id=span_id,
                parent_span_id=parent if (made + i) % 10 else b"",
                name=f"{service}.Service/method{rng.randrange(8)}", kind=rng.choice((2, 3)),
                start_time_unix_nano=start,
                end_time_unix_nano=start + rng.randrange(50_000, 5_000_000),
                attributes=[kv("rpc.system", "callscope"), kv("rpc.service", f"{service}.Service"),
                            kv("net.peer.name", f"10.0.0.{rng.randrange(1, 50)}"),
                            kv("net.peer.port", 7001), kv("zone", rng.choice("abc")),
                            kv("attempt", rng.randrange(3))],
                status=Status(code=2 if rng.random() < 0.02 else 0),
            )  # fmt: skip
            if (made + i) % 5 == 0:
                span.events.add(time_unix_nano=start + 1000, name="retry",
                                attributes=[kv("attempt", 2)])  # fmt: skip
            by_service.setdefault(service, []).append(span)
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource={
                        "attributes": [
                            kv("service.name", service),
                            kv("host.name", f"node-{k}"),
                            kv("telemetry.sdk.language", "python"),
                        ]
                    },
                    scope_spans=[ScopeSpans(scope={"name": "bench"}, spans=batch)],
                )
                for k, (service, batch) in enumerate(by_service.items())
            ]
        )
        bodies.append(request.SerializeToString())
        made += count
    return bodies


def _send_http(port: int, bodies: list[bytes], result: Any) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-protobuf"}
    for body in bodies:
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            try:
                connection.request("POST", "/v1/traces", body, headers)
                answer = connection.getresponse()
                answer.read()
                status, retry = answer.status, float(answer.getheader("Retry-After") or 1)
            except (OSError, http.client.HTTPException):
                connection.close()
                status, retry = 0, 0.5
            if status == 200:
                result["sent"] += 1
                break
            result["retries"] += 1
            if status not in (0, 429, 502, 503, 504) or time.monotonic() > deadline:
                result["failed"] += 1
                break
            time.sleep(retry)


def _send_grpc(port: int, bodies: list[bytes], result: Any) -> None:
    import grpc

    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        for body in bodies:
            deadline = time.monotonic() + GIVE_UP_S
            while True:
                try:
                    export(body, timeout=60)
                    result["sent"] += 1
                    break
                except grpc.RpcError as exc:
                    result["retries"] += 1
                    if exc.code() not in retryable or time.monotonic() > deadline:
                        result["failed"] += 1
                        break
                    time.sleep(0.5)


def _sender(protocol: str, port: int, seed: int, spans: int, per_request: int,
            ready: Any, start: Any, results: Any, index: int) -> None:  # fmt: skip
    bodies = make_requests(seed, spans, per_request)
    result = {"sent": 0, "failed": 0, "retries": 0}
    ready.put(index)
    start.wait()
    (_send_grpc if protocol == "grpc" else _send_http)(port, bodies, result)
    results[3 * index : 3 * index + 3] = [
        result["sent"], result["failed"] * per_request, result["retries"],
    ]  # fmt: skip


# -- targets -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def es_count(pattern: str) -> int:
    url = f"{ES}/{pattern}/_count?allow_no_indices=true&ignore_unavailable=true"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(json.loads(answer.read())["count"])
    except OSError:
        return 0


def es_delete(prefix: str) -> None:
    """A run's indices and index templates (both targets name theirs after the prefix)."""
    paths = [f"{prefix}*?allow_no_indices=true"]
    listing = f"{ES}/_index_template/{prefix}*"
    with (
        contextlib.suppress(OSError, KeyError, ValueError),
        urllib.request.urlopen(listing) as answer,
    ):
        paths += [f"_index_template/{t['name']}" for t in json.load(answer)["index_templates"]]
    for path in paths:
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{ES}/{path}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {port}")


def cpu_s(proc: psutil.Process) -> float:
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def start_callscope(
    tmp: Path, tag: str, args: argparse.Namespace
) -> tuple[subprocess.Popen, int, str]:
    http_port, grpc_port = free_port(), free_port()
    store = f"elasticsearch://127.0.0.1:9200?prefix=csbench-{tag}&shards=1&replicas=0"
    cmd = [sys.executable, "-m", "callscope", "collector", "--store", store,
           "--spool", str(tmp / "spool"), "--dlq-file", str(tmp / "dlq.jsonl"),
           "--http-port", str(http_port), "--grpc-port", str(grpc_port),
           "--workers", str(args.workers), "--summary-interval", "0"]  # fmt: skip
    with open(tmp / "collector.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
    port = grpc_port if args.protocol == "grpc" else http_port
    wait_port(port, proc, "callscope collector")
    return proc, port, f"csbench-{tag}-spans-*"


def start_jaeger(
    tmp: Path, tag: str, args: argparse.Namespace
) -> tuple[subprocess.Popen, int, str]:
    http_port, grpc_port = free_port(), free_port()
    prefix = f"jbench-{tag}"
    config = f"""
service:
  extensions: [jaeger_storage]
  pipelines:
    traces: {{receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter]}}
  telemetry:
    logs: {{level: warn}}
    metrics: {{level: none}}
extensions:
  jaeger_storage:
    backends:
      es:
        elasticsearch:
          server_urls: ["{ES}"]
          version: 8
          disable_health_check: true
          bulk_processing: {{workers: {args.jaeger_bulk_workers}}}
          indices:
            index_prefix: "{prefix}"
            spans: {{shards: 1, replicas: 0}}
            services: {{shards: 1, replicas: 0}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{grpc_port}"}}
      http: {{endpoint: "127.0.0.1:{http_port}"}}
processors:
  batch: {{}}
exporters:
  jaeger_storage_exporter: {{trace_storage: es}}
"""
    (tmp / "jaeger.yaml").write_text(config)
    with open(tmp / "jaeger.log", "w") as log:
        command = [args.jaeger, "--config", str(tmp / "jaeger.yaml")]
        proc = subprocess.Popen(command, cwd=tmp, stdout=subprocess.DEVNULL, stderr=log)
    port = grpc_port if args.protocol == "grpc" else http_port
    wait_port(port, proc, "jaeger")
    return proc, port, f"{prefix}-jaeger-span-*"


def run_one(name: str, starter: Any, args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix=f"otlp-bench-{name}-") as tmp_dir:
        tmp = Path(tmp_dir)
        proc, port, pattern = starter(tmp, tag, args)
        ctx = multiprocessing.get_context("spawn")
        ready, start = ctx.Queue(), ctx.Event()
        results = ctx.Array("q", 3 * args.senders, lock=False)
        share = args.spans // args.senders
        senders = [
            ctx.Process(target=_sender_main, args=(args.protocol, port, 1000 * i + 7, share,
                                                   args.per_request, ready, start, results, i))
            for i in range(args.senders)
        ]  # fmt: skip
        for s in senders:
            s.start()
        for _ in senders:  # each has built its requests
            ready.get(timeout=600)
        watched = psutil.Process(proc.pid)
        cpu0, t0 = cpu_s(watched), time.monotonic()
        start.set()
        total = share * args.senders
        deadline = t0 + args.timeout
        count = 0
        while time.monotonic() < deadline:
            count = es_count(pattern)
            if count >= total:
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        cpu = cpu_s(watched) - cpu0
        for s in senders:
            s.join(60)
        failed = sum(results[3 * i + 1] for i in range(args.senders))
        retries = sum(results[3 * i + 2] for i in range(args.senders))
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        es_delete(pattern.split("-")[0] + "-" + tag + "-")
        lost = max(0, total - count)
        print(f"{name}: {total} spans in {elapsed:.1f}s = {total / elapsed:,.0f} spans/s, "
              f"cpu {cpu:.1f}s ({cpu / total * 1e6:.0f} us/span), retries {retries}, "
              f"failed {failed}, lost {lost}", flush=True)  # fmt: skip
        return {"spans_per_s": total / elapsed, "cpu_us_per_span": cpu / total * 1e6,
                "lost": lost, "retries": retries}  # fmt: skip


def median_run(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round by throughput, the lower one of an even count (its CPU with it);
    ``lost`` is the worst round's."""
    ranked = sorted(results, key=lambda r: r["spans_per_s"])
    return {**ranked[(len(ranked) - 1) // 2], "lost": max(r["lost"] for r in results)}


def _sender_main(*args: Any) -> None:
    sys.path.insert(0, str(ROOT))
    _sender(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--per-request", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--workers", type=int, default=1, help="callscope collector --workers")
    parser.add_argument("--jaeger", default=os.environ.get("JAEGER_BIN"),
                        help="a Jaeger v2 binary, the same-run peer")  # fmt: skip
    parser.add_argument("--jaeger-bulk-workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians")
    args = parser.parse_args()
    if args.jaeger and not shutil.which(args.jaeger):
        raise SystemExit(f"no Jaeger binary at {args.jaeger}")
    runs: dict[str, list[dict[str, Any]]] = {"callscope": [], "jaeger": []}
    for _ in range(args.rounds):  # alternating, so both see the same machine
        runs["callscope"].append(run_one("callscope", start_callscope, args))
        if args.jaeger:
            runs["jaeger"].append(run_one("jaeger", start_jaeger, args))
    ours = median_run(runs["callscope"])
    peer = median_run(runs["jaeger"]) if args.jaeger else None
    summary = {
        "spans": args.spans, "protocol": args.protocol, "per_request": args.per_request,
        "senders": args.senders, "workers": args.workers,
        "spans_per_s": round(ours["spans_per_s"]),
        "peer_spans_per_s": round(peer["spans_per_s"]) if peer else None,
        "ratio_vs_jaeger": round(ours["spans_per_s"] / peer["spans_per_s"], 3) if peer else None,
        "cpu_us_per_span": round(ours["cpu_us_per_span"], 1),
        "peer_cpu_us_per_span": round(peer["cpu_us_per_span"], 1) if peer else None,
        "lost": ours["lost"], "peer_lost": peer["lost"] if peer else None,
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
