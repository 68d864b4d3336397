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

Both sides' CPU time per call is read from /proc over the measured window of every
echo round, so the cost of tracing shows per side (``added_cpu_us_per_call_*``).

``--decompose`` runs only (a), with two stand-ins besides (see ``_tracing_variants``):
``context-only`` (carry a traceparent, nothing else) and ``floor`` (the least a
pure-Python tracer can do), and callscope without its C hot path (``callscope-python``,
``CALLSCOPE_NATIVE=0``), to show which part of the cost is whose.

Usage::

    .venv/bin/python benchmarks/tracing_overhead.py [--seconds 5] [--kafka 127.0.0.1:9092]
    .venv/bin/python benchmarks/tracing_overhead.py --decompose --rounds 4 --seconds 3

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


def instrument_process(name: str, kafka: str, variant: str) -> Any:
    """What ``import instrument.auto`` does, with the benchmark's service name and topics
    (``variant`` "callscope"); or one of the stand-ins; or nothing ("untraced")."""
    if variant == "untraced":
        return None
    if not variant.startswith("callscope"):
        from _tracing_variants import install

        install(variant, name)
        return None
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
async def serve(variant: str, kafka: str) -> None:
    inst = instrument_process("bench-server", kafka, variant)
    server = rpc.Server("127.0.0.1", 0, injvm=False)
    server.export(Echo())
    await server.start()
    print(json.dumps({"address": server.address}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(grace=1.0)
    if inst is not None:
        inst.shutdown()
        print(json.dumps({"counters": inst.pipeline.counters}), flush=True)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(
    address: str, variant: str, kafka: str, inflight: int, seconds: float, server_pid: int
) -> None:
    inst = instrument_process("bench-client", kafka, variant)
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
    cpu_started, server_cpu_started = time.process_time(), process_cpu_s(server_pid)
    await asyncio.sleep(seconds)
    counting = False
    elapsed = time.perf_counter() - started
    client_cpu = time.process_time() - cpu_started
    server_cpu = process_cpu_s(server_pid) - server_cpu_started
    running = False
    await asyncio.gather(*tasks)
    await client.close()
    result: dict[str, Any] = {
        "qps": done / elapsed,
        "client_cpu_us": 1e6 * client_cpu / max(done, 1),
        "server_cpu_us": 1e6 * server_cpu / max(done, 1),
    }
    if inst is not None:
        inst.force_flush(30)
        result["counters"] = dict(inst.pipeline.counters)
        result["hot_path"] = inst.hot_path
        inst.shutdown()
    print(json.dumps(result), flush=True)


def echo_round(variant: str, kafka: str, inflight: int, seconds: float) -> dict[str, Any]:
    flag = ["--variant", variant]
    env = dict(os.environ)
    if variant == "callscope-python":  # the same instrumentation without its C hot path
        env["CALLSCOPE_NATIVE"] = "0"
    server = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--role", "server", "--kafka", kafka, *flag],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        address = json.loads(server.stdout.readline())["address"]
        out = subprocess.run(
            [sys.executable, str(SCRIPT), "--role", "client", "--kafka", kafka, "--address",
             address, "--inflight", str(inflight), "--seconds", str(seconds),
             "--server-pid", str(server.pid), *flag],
            capture_output=True, text=True, timeout=seconds + 120, check=True, env=env,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        rest, _ = server.communicate(input="", timeout=60)
    lines = rest.strip().splitlines()
    if lines:  # the traced server's export counters, after its last flush
        result["server_counters"] = json.loads(lines[-1])["counters"]
    return result


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


def echo_rounds(variants: list[str], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """``args.rounds`` rounds, each running every variant once, in order; results by variant.
    Each result also has the round's untraced figures (``base``), for paired ratios."""
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for i in range(args.rounds):
        base: dict[str, Any] = {}
        for variant in variants:
            res = echo_round(variant, args.kafka, args.inflight, args.seconds)
            base = base or res
            res["base"] = base
            results[variant].append(res)
            for side in ("counters", "server_counters"):
                counters = res.get(side, {})
                if counters.get("spooled") or counters.get("dropped"):
                    print(f"  warning: Kafka did not take everything ({side}): {counters}",
                          file=sys.stderr, flush=True)  # fmt: skip
            print(f"  round {i + 1} {variant:12s} {res['qps']:9.0f} calls/s  CPU/call client "
                  f"{res['client_cpu_us']:5.1f} µs server {res['server_cpu_us']:5.1f} µs",
                  file=sys.stderr, flush=True)  # fmt: skip
    return results


def summarize(rounds: dict[str, list[dict[str, Any]]], variant: str) -> dict[str, float]:
    """Medians over the rounds of a variant, each paired with its round's untraced run."""
    rows = rounds[variant]

    def median(values: Any) -> float:
        return round(statistics.median(values), 3)

    return {
        "qps": median(r["qps"] for r in rows),
        "ratio_qps_vs_untraced": median(r["qps"] / r["base"]["qps"] for r in rows),
        "added_cpu_us_per_call_client": median(
            r["client_cpu_us"] - r["base"]["client_cpu_us"] for r in rows
        ),
        "added_cpu_us_per_call_server": median(
            r["server_cpu_us"] - r["base"]["server_cpu_us"] for r in rows
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per round")
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="traced/untraced pairs (medians; more rounds, steadier on a noisy machine)",
    )  # fmt: skip
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--spans", type=int, default=20000, help="spans per cost round")
    parser.add_argument(
        "--kafka",
        default=os.environ.get("CALLSCOPE_KAFKA_BOOTSTRAP") or "127.0.0.1:9092",
    )
    parser.add_argument(
        "--decompose", action="store_true",
        help="echo rounds only: untraced, context-only, floor, callscope without its C hot "
        "path (callscope-python) and callscope, alternating",
    )  # fmt: skip
    parser.add_argument("--role", choices=["server", "client"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="untraced", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        rpc.run(serve(args.variant, args.kafka))
        return 0
    if args.role == "client":
        rpc.run(
            load(args.address, args.variant, args.kafka, args.inflight, args.seconds,
                 args.server_pid)
        )  # fmt: skip
        return 0

    print(f"tracing overhead: echo over loopback, {args.inflight} in flight, "
          f"Kafka at {args.kafka}", file=sys.stderr, flush=True)  # fmt: skip
    variants = ["untraced", "context-only", "floor", "callscope-python", "callscope"]
    rounds = echo_rounds(variants if args.decompose else ["untraced", "callscope"], args)
    if args.decompose:
        parts = {v: summarize(rounds, v) for v in variants[1:]}
        machine = {"python": platform.python_version(), "cpus": os.cpu_count()}
        print(json.dumps({"benchmark": "tracing_overhead_decomposed", **parts, **machine}))
        return 0
    traced = summarize(rounds, "callscope")
    untraced = [r["qps"] for r in rounds["untraced"]]
    exported = sum(
        r.get("counters", {}).get("spans_exported", 0) + r.get("counters", {}).get("replayed", 0)
        for r in rounds["callscope"]
    )
    server_exported = sum(
        r.get("server_counters", {}).get("spans_exported", 0) for r in rounds["callscope"]
    )
    dropped = sum(
        r.get(side, {}).get("dropped", 0)
        for r in rounds["callscope"]
        for side in ("counters", "server_counters")
    )
    costs = span_costs(rounds=5, n=args.spans)
    our_us, sdk_us = costs["cpu"]
    our_wall, sdk_wall = costs["wall"]
    print(f"  cost per span (CPU, all threads): callscope {our_us:.2f} µs, OpenTelemetry SDK "
          f"{sdk_us:.2f} µs; wall {our_wall:.2f} / {sdk_wall:.2f} µs",
          file=sys.stderr, flush=True)  # fmt: skip
    qps_untraced = statistics.median(untraced)
    summary = {
        "benchmark": "tracing_overhead",
        "qps_untraced": round(qps_untraced, 1),
        "qps_traced": traced["qps"],
        "added_cpu_us_per_call_client": traced["added_cpu_us_per_call_client"],
        "added_cpu_us_per_call_server": traced["added_cpu_us_per_call_server"],
        "client_spans_exported_to_kafka": exported,
        "server_spans_exported_to_kafka": server_exported,
        "spans_dropped": dropped,
        "hot_path": sorted({r.get("hot_path", "") for r in rounds["callscope"]}),
        "us_per_span_callscope": round(our_us, 3),
        "us_per_span_otel_sdk": round(sdk_us, 3),
        "wall_us_per_span_callscope": round(our_wall, 3),
        "wall_us_per_span_otel_sdk": round(sdk_wall, 3),
        "ratio_qps_traced_vs_untraced": traced["ratio_qps_vs_untraced"],
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
