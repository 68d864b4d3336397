"""What tracing costs: echo QPS traced vs untraced, and cost per span vs the OpenTelemetry SDK.

(a) A callscope echo server and a closed-loop client, each in its own process, run
    untraced and traced (100% sampling, every span and KPI exported to a real Kafka
    through ``instrument``), alternating, in the same run. Traced rounds use exactly
    what ``import instrument.auto`` installs. Ratio: traced QPS / untraced QPS.
(b) In one process, the same span workload (a CLIENT span with three attributes and
    one more set inside, through the OpenTelemetry API, as the current span) through
    our pipeline (lean provider, queue, export thread encoding JSON span records,
    exporter discarding) and through the OpenTelemetry SDK (``BatchSpanProcessor``,
    exporter discarding), alternating; each round ends with a flush, so background
    work is counted. Cost = CPU time of the whole process (every thread) per span;
    wall time is reported too. Ours does more than the SDK here: it encodes every span
    to its JSON record, the SDK's discarding exporter serializes nothing. Ratio: our
    CPU µs per span / the SDK's.

Usage::

    .venv/bin/python benchmarks/tracing_overhead.py [--seconds 5] [--kafka 127.0.0.1:9092]

Kafka comes from ``--kafka``, else ``CALLSCOPE_KAFKA_BOOTSTRAP``, else 127.0.0.1:9092
(``callscope stack up kafka``). Progress lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import rpc

SCRIPT = Path(__file__).resolve()
SERVICE = "bench.Echo"
SPANS_TOPIC = "callscope.spans.bench"
KPIS_TOPIC = "callscope.kpis.bench"


@rpc.service(SERVICE)
class Echo:
    async def echo(self, data: bytes) -> bytes:
        return data


def instrument_process(name: str, kafka: str) -> Any:
    """What ``import instrument.auto`` does, with the benchmark's service name and topics."""
    from instrument import Settings, configure

    settings = Settings(
        service_name=name,
        kafka_bootstrap=kafka,
        exporter=os.environ.get("CALLSCOPE_EXPORTER", "kafka"),
        spans_topic=SPANS_TOPIC,
        kpis_topic=KPIS_TOPIC,
        sample_ratio=1.0,
        spool_dir=str(Path(os.environ.get("TMPDIR", "/tmp")) / "callscope-bench-spool"),
        libraries="none",
    )
    return configure(settings, install=True)


# -- (a) the two processes ------------------------------------------------------------
async def serve(traced: bool, kafka: str) -> None:
    inst = instrument_process("bench-server", kafka) if traced else None
    server = rpc.Server("127.0.0.1", 0, injvm=False)
    server.export(Echo())
    await server.start()
    print(json.dumps({"address": server.address}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(grace=1.0)
    if inst is not None:
        inst.shutdown()


async def load(address: str, traced: bool, kafka: str, inflight: int, seconds: float) -> None:
    inst = instrument_process("bench-client", kafka) if traced else None
    client = rpc.AsyncClient([address], injvm=False)
    proxy = client.proxy(SERVICE)
    payload = b"x" * 64
    done = 0
    counting = False
    running = True

    async def worker() -> None:
        nonlocal done
        while running:
            await proxy.echo(payload)
            if counting:
                done += 1

    tasks = [asyncio.ensure_future(worker()) for _ in range(inflight)]
    await asyncio.sleep(1.0)  # warm-up
    counting = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    counting = False
    elapsed = time.perf_counter() - started
    running = False
    await asyncio.gather(*tasks)
    await client.close()
    result: dict[str, Any] = {"qps": done / elapsed}
    if inst is not None:
        inst.force_flush(30)
        result["counters"] = dict(inst.pipeline.counters)
        inst.shutdown()
    print(json.dumps(result), flush=True)


def echo_round(traced: bool, kafka: str, inflight: int, seconds: float) -> dict[str, Any]:
    flag = ["--traced"] if traced else []
    server = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--role", "server", "--kafka", kafka, *flag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        address = json.loads(server.stdout.readline())["address"]
        out = subprocess.run(
            [sys.executable, str(SCRIPT), "--role", "client", "--kafka", kafka, "--address",
             address, "--inflight", str(inflight), "--seconds", str(seconds), *flag],
            capture_output=True, text=True, timeout=seconds + 120, check=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.communicate(input="", timeout=60)


# -- (b) cost per span --------------------------------------------------------------------
ATTRIBUTES = {"rpc.system": "callscope", "rpc.service": SERVICE, "rpc.method": "echo"}


def spans_through(tracer: Any, flush: Any, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per span for ``n`` spans through ``tracer``, the flush included."""
    from opentelemetry.trace import SpanKind

    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        with tracer.start_as_current_span(
            "bench.Echo/echo", kind=SpanKind.CLIENT, attributes=ATTRIBUTES
        ) as span:
            span.set_attribute("net.peer.name", "127.0.0.1")
    flush()
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def span_costs(rounds: int, n: int) -> dict[str, tuple[float, float]]:
    from opentelemetry.sdk.trace import TracerProvider as SdkProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    from instrument import ExportPipeline, NullExporter, Resource, TracerProvider

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sdk = SdkProvider()
    sdk.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=n * 2))
    pipeline = ExportPipeline(NullExporter(), queue_size=n * 2)
    ours = TracerProvider(Resource("bench", "127.0.0.1:1", platform.node()), pipeline)
    sdk_tracer, our_tracer = sdk.get_tracer("bench"), ours.get_tracer("bench")
    spans_through(sdk_tracer, sdk.force_flush, n // 4)  # warm-up both
    spans_through(our_tracer, pipeline.force_flush, n // 4)
    sdk_us, our_us = [], []
    for i in range(rounds):
        print(f"  span cost round {i + 1}/{rounds}", file=sys.stderr, flush=True)
        sdk_us.append(spans_through(sdk_tracer, sdk.force_flush, n))
        our_us.append(spans_through(our_tracer, pipeline.force_flush, n))
    assert pipeline.counters["spans_exported"] >= n * rounds and not pipeline.counters["dropped"]
    pipeline.shutdown()
    sdk.shutdown()
    return {
        "cpu": (statistics.median(u[0] for u in our_us), statistics.median(u[0] for u in sdk_us)),
        "wall": (statistics.median(u[1] for u in our_us), statistics.median(u[1] for u in sdk_us)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per round")
    parser.add_argument("--rounds", type=int, default=2, help="traced/untraced pairs")
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--spans", type=int, default=20000, help="spans per cost round")
    parser.add_argument(
        "--kafka",
        default=os.environ.get("CALLSCOPE_KAFKA_BOOTSTRAP") or "127.0.0.1:9092",
    )
    parser.add_argument("--role", choices=["server", "client"], help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        rpc.run(serve(args.traced, args.kafka))
        return 0
    if args.role == "client":
        rpc.run(load(args.address, args.traced, args.kafka, args.inflight, args.seconds))
        return 0

    print(f"tracing overhead: echo over loopback, {args.inflight} in flight, "
          f"Kafka at {args.kafka}", file=sys.stderr, flush=True)  # fmt: skip
    untraced, traced, exported = [], [], 0
    for i in range(args.rounds):
        for is_traced in (False, True):
            res = echo_round(is_traced, args.kafka, args.inflight, args.seconds)
            (traced if is_traced else untraced).append(res["qps"])
            counters = res.get("counters", {})
            if is_traced:
                exported += counters.get("spans_exported", 0) + counters.get("replayed", 0)
                if counters.get("spooled") or counters.get("dropped"):
                    print(f"  warning: Kafka did not take everything: {counters}",
                          file=sys.stderr, flush=True)  # fmt: skip
            label = "traced  " if is_traced else "untraced"
            print(f"  round {i + 1} {label} {res['qps']:9.0f} calls/s {counters or ''}",
                  file=sys.stderr, flush=True)  # fmt: skip
    costs = span_costs(rounds=5, n=args.spans)
    our_us, sdk_us = costs["cpu"]
    our_wall, sdk_wall = costs["wall"]
    print(f"  cost per span (CPU, all threads): callscope {our_us:.2f} µs, OpenTelemetry SDK "
          f"{sdk_us:.2f} µs; wall {our_wall:.2f} / {sdk_wall:.2f} µs",
          file=sys.stderr, flush=True)  # fmt: skip
    qps_untraced, qps_traced = statistics.median(untraced), statistics.median(traced)
    summary = {
        "benchmark": "tracing_overhead",
        "qps_untraced": round(qps_untraced, 1),
        "qps_traced": round(qps_traced, 1),
        "client_spans_exported_to_kafka": exported,
        "us_per_span_callscope": round(our_us, 3),
        "us_per_span_otel_sdk": round(sdk_us, 3),
        "wall_us_per_span_callscope": round(our_wall, 3),
        "wall_us_per_span_otel_sdk": round(sdk_wall, 3),
        "ratio_qps_traced_vs_untraced": round(qps_traced / qps_untraced, 3),
        "span_cost_ratio_vs_otel_sdk": round(our_us / sdk_us, 3),
        "span_wall_ratio_vs_otel_sdk": round(our_wall / sdk_wall, 3),
        "goals": {
            "ratio_qps_traced_vs_untraced": ">= 0.7",
            "span_cost_ratio_vs_otel_sdk": "<= 0.33",
        },
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
