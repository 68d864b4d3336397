"""Flow-control overhead and load shedding: echo with limits vs without, and goodput at 3x load.

*Overhead*: echo QPS at 64 in flight (closed loop, as ``rpc_echo``) against a provider
with flow control on -- a quota gate, an explicit concurrency limit (bulkhead), the
consumer's in-flight cap and a circuit breaker (none of them tripping) -- vs a plain
provider and client, alternating round by round; the ratio is of the medians.

*Overload*: a provider whose capacity is known (``--capacity-workers`` calls at once,
each ``--work-ms`` long, a short queue) is offered 1x and then 3x that rate, open loop
(calls start on a clock, whatever the answers). Goodput is the calls answered OK per
second; with load shedding, goodput at 3x stays near goodput at 1x, the excess gets
BUSY at once, and the p99 of the served calls stays bounded by the queue.

Usage::

    .venv/bin/python benchmarks/flow_overhead.py --seconds 3 --rounds 3

Progress lines first; the last line is one JSON object with
``ratio_qps_limited_vs_plain`` (goal >= 0.9) and ``ratio_goodput_3x_vs_1x`` (goal >= 0.9).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rpc_echo import (
    HOST,
    SERVICE,
    Echo,
    ServerProcess,
    announce,
    closed_loop,
    last_json,
    loop_name,
    machine,
    percentile,
    server_cpu_per_call,
    until_told_to_stop,
    window_args,
    window_parser,
)

import rpc
from rpc.flow import ConcurrencyLimit, QuotaLimiter, quota_key
from rpc.registry import MemoryRegistry

SCRIPT = Path(__file__).resolve()
INFLIGHT = 64
KINDS = ("plain", "limited")
WORK = "bench.Work"


def breaker_available() -> bool:
    try:
        import rpc.degrade
    except ImportError:
        return False
    return "breaker" in rpc.config.Settings().to_dict()


@rpc.service(WORK)
class Work:
    """A call of known cost that holds no CPU: capacity is the bulkhead's, nothing else."""

    async def work(self, ms: float) -> float:
        await asyncio.sleep(ms / 1000)
        return ms


# -- server roles ---------------------------------------------------------------
async def serve(kind: str, workers: int, queue: int) -> None:
    if kind == "work":
        server = rpc.Server(
            HOST, 0, concurrency=ConcurrencyLimit(max_concurrent=workers, max_queue=queue)
        )
        server.export(Work())
    else:
        server = rpc.Server(HOST, 0)
        server.export(Echo())
        if kind == "limited":
            server.limit(SERVICE, ConcurrencyLimit(max_concurrent=256, max_queue=1024))
    await server.start()
    quota = None
    if kind == "limited":  # the leased quota pool, from an in-process registry (never tripping)
        registry = MemoryRegistry()
        registry.put_config(quota_key(SERVICE), {"qps": 1e9})
        quota = QuotaLimiter(registry).attach(server)
        while quota.snapshot()[SERVICE]["state"] != "leased":
            await asyncio.sleep(0.01)
    announce(server.port)
    try:
        await until_told_to_stop()
    finally:
        await server.stop(grace=1.0)
        if quota is not None:
            quota.close()


# -- client roles ------------------------------------------------------------------
async def echo_client(kind: str, port: int, warmup: float, seconds: float) -> dict[str, Any]:
    payload = os.urandom(100)
    consumer = rpc.AsyncClient([f"{HOST}:{port}"], injvm=False)
    if kind == "limited":
        settings: dict[str, Any] = {"max_inflight": 1000}
        if breaker_available():
            settings["breaker"] = {"error_ratio": 0.5, "min_calls": 20}
        consumer.configure(SERVICE, **settings)
    try:
        echo = consumer.proxy(SERVICE).echo
        if await echo(payload) != payload:
            raise AssertionError("echo returned something else")
        result = await closed_loop(lambda: echo(payload), INFLIGHT, warmup, seconds)
    finally:
        await consumer.close()
    return {**result, "loop": loop_name()}


async def open_loop(port: int, rate: float, work_ms: float, warmup: float, seconds: float) -> dict:
    """Start ``rate`` calls a second on a 5 ms clock for ``warmup + seconds``; count the
    outcomes of the calls started inside the window."""
    consumer = rpc.AsyncClient([f"{HOST}:{port}"], injvm=False)
    work = consumer.proxy(WORK, timeout=2.0).work
    await work(0)
    clock = time.perf_counter
    latencies: list[float] = []
    codes: dict[str, int] = {}
    pending: set[asyncio.Task[None]] = set()

    async def one(counted: bool) -> None:
        t0 = clock()
        try:
            await work(work_ms)
        except rpc.RpcError as err:
            if counted:
                codes[err.code] = codes.get(err.code, 0) + 1
            return
        if counted:
            latencies.append(clock() - t0)

    start = clock()
    window = (start + warmup, start + warmup + seconds)
    started = 0
    try:
        while (now := clock()) < window[1]:
            due = int((now - start) * rate)
            counted = now >= window[0]
            while started < due:
                started += 1
                task = asyncio.ensure_future(one(counted))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.sleep(0.005)
        if pending:
            await asyncio.wait(pending, timeout=5)
    finally:
        for task in pending:
            task.cancel()
        await consumer.close()
    ordered = sorted(latencies)
    offered = len(ordered) + sum(codes.values())
    return {
        "rate": rate,
        "offered_per_s": round(offered / seconds, 1),
        "goodput_per_s": round(len(ordered) / seconds, 1),
        "p50_ms": round(percentile(ordered, 0.50) * 1e3, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1e3, 2),
        "errors": codes,
        "loop": loop_name(),
    }


def run_client(args: argparse.Namespace, *role: str) -> dict[str, Any]:
    cmd = [sys.executable, str(SCRIPT), *role, "--port", str(args.port_of_role)]
    cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    cmd += ["--work-ms", str(args.work_ms)]
    return last_json(cmd, args.seconds + args.warmup + 60, f"client {role}")


# -- the orchestrating process -------------------------------------------------------
def overhead(args: argparse.Namespace) -> dict[str, Any]:
    servers = {kind: ServerProcess(kind, script=SCRIPT) for kind in KINDS}
    try:
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for round_ in range(1, args.rounds + 1):
            for kind in KINDS:
                args.port_of_role = servers[kind].port
                cpu0 = servers[kind].cpu_seconds()
                res = run_client(args, "--client", kind)
                res["server_cpu_us_per_call"] = server_cpu_per_call(servers[kind], cpu0, res, args)
                runs[kind].append(res)
                print(
                    f"  round {round_} {kind:<8} {res['qps']:>8.0f} qps  p50 {res['p50_ms']:6.3f}"
                    f" ms  p99 {res['p99_ms']:6.3f} ms  CPU/call client"
                    f" {res['client_cpu_us_per_call']:5.1f} server"
                    f" {res['server_cpu_us_per_call']:5.1f} us",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    return {
        "qps_limited": round(median("limited", "qps"), 1),
        "qps_plain": round(median("plain", "qps"), 1),
        "p99_ms_limited": round(median("limited", "p99_ms"), 3),
        "p99_ms_plain": round(median("plain", "p99_ms"), 3),
        "client_cpu_us_per_call_limited": round(median("limited", "client_cpu_us_per_call"), 1),
        "client_cpu_us_per_call_plain": round(median("plain", "client_cpu_us_per_call"), 1),
        "server_cpu_us_per_call_limited": round(median("limited", "server_cpu_us_per_call"), 1),
        "server_cpu_us_per_call_plain": round(median("plain", "server_cpu_us_per_call"), 1),
        "ratio_qps_limited_vs_plain": round(median("limited", "qps") / median("plain", "qps"), 3),
    }


def overload(args: argparse.Namespace) -> dict[str, Any]:
    capacity = args.capacity_workers * 1000 / args.work_ms
    options = ["--capacity-workers", str(args.capacity_workers), "--queue", str(args.queue)]
    server = ServerProcess("work", script=SCRIPT, options=options)
    try:
        args.port_of_role = server.port
        results = {}
        for factor in (1, 3):
            res = run_client(args, "--client", "open", "--rate", str(capacity * factor))
            results[factor] = res
            print(
                f"  {factor}x load: offered {res['offered_per_s']:>7.1f}/s  goodput"
                f" {res['goodput_per_s']:>7.1f}/s  p50 {res['p50_ms']:6.2f} ms  p99"
                f" {res['p99_ms']:6.2f} ms  errors {res['errors']}",
                flush=True,
            )
    finally:
        server.stop()
    one, three = results[1], results[3]
    return {
        "capacity_per_s": capacity,
        "goodput_1x": one["goodput_per_s"],
        "goodput_3x": three["goodput_per_s"],
        "p99_ms_1x": one["p99_ms"],
        "p99_ms_3x": three["p99_ms"],
        "busy_3x": three["errors"].get("BUSY", 0),
        "errors_3x": three["errors"],
        "ratio_goodput_3x_vs_1x": round(
            three["goodput_per_s"] / max(one["goodput_per_s"], 1e-9), 3
        ),
    }


def orchestrate(args: argparse.Namespace) -> None:
    started = time.monotonic()
    breaker = breaker_available()
    print(
        f"flow_overhead: echo at {INFLIGHT} in flight, limited (quota: the leased pool's gate;"
        f" bulkhead; consumer cap;"
        f" breaker: {'on' if breaker else 'rpc.degrade has not landed, off'}) vs plain;"
        f" {args.rounds} rounds of {args.seconds}s (+{args.warmup}s warm-up)",
        flush=True,
    )
    summary: dict[str, Any] = {}
    if not args.overload_only:
        summary.update(overhead(args))
    print(
        f"overload: {args.capacity_workers} calls at once x {args.work_ms} ms each, queue"
        f" {args.queue}; open loop at 1x and 3x that rate",
        flush=True,
    )
    summary.update(overload(args))
    summary.update(
        {
            "breaker": breaker,
            "quota": "rpc.flow.QuotaLimiter (leased pool, in-process registry)",
            "rounds": args.rounds,
            "seconds": args.seconds,
            "inflight": INFLIGHT,
            **machine(),
        }
    )
    if "ratio_qps_limited_vs_plain" in summary:
        print(f"  ratio_qps_limited_vs_plain {summary['ratio_qps_limited_vs_plain']} (goal >= 0.9)")
    print(
        f"  ratio_goodput_3x_vs_1x {summary['ratio_goodput_3x_vs_1x']} (goal >= 0.9);"
        f" took {time.monotonic() - started:.1f}s",
        flush=True,
    )
    print(json.dumps(summary), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = window_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="plain/limited pairs")
    parser.add_argument("--overload-only", action="store_true", help="skip the overhead rounds")
    parser.add_argument("--capacity-workers", type=int, default=8, help="overload: calls at once")
    parser.add_argument("--work-ms", type=float, default=20.0, help="overload: ms per call")
    parser.add_argument("--queue", type=int, default=8, help="overload: queue places")
    # Internal: the roles the orchestrator starts in subprocesses.
    parser.add_argument("--serve", choices=[*KINDS, "work"], help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=[*KINDS, "open"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = window_args(parser, argv)
    if args.rounds < 1 or args.work_ms <= 0 or args.capacity_workers < 1:
        parser.error("--rounds, --work-ms and --capacity-workers must be positive")
    return args


def main() -> None:
    args = parse_args()
    if args.serve:
        rpc.run(serve(args.serve, args.capacity_workers, args.queue))
    elif args.client == "open":
        result = rpc.run(open_loop(args.port, args.rate, args.work_ms, args.warmup, args.seconds))
        print(json.dumps(result), flush=True)
    elif args.client:
        print(json.dumps(rpc.run(echo_client(args.client, args.port, args.warmup, args.seconds))))
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
