"""Governance overhead: echo QPS through the consumer's full chain vs a direct call, same run.

*Governed*: an ``AsyncClient`` over three provider processes with the whole cluster
layer at work -- a router rule evaluated per call, the weighted round-robin balancer
(the default), ``failover`` with 2 retries for an idempotent method. *Direct*: an
``AsyncClient`` given one provider address and the defaults (``failfast``, one
provider: no balancer runs). Also measured, to tell the two costs apart: *spread*, the
defaults over the same three providers (round robin, no rules, failfast) -- what
spreading 64 calls over three links costs by itself (fewer frames per write). All
close the loop with 64 calls in flight from one client process (the client is what
governance costs) and alternate round by round, so a noisy machine's drift hits each;
the ratio is of the medians. Client CPU per call is the steadier figure on a busy box.

Usage::

    .venv/bin/python benchmarks/governance_overhead.py --seconds 3 --rounds 3

Progress lines first; the last line is one JSON object with
``ratio_qps_governed_vs_direct`` (goal: at least 0.85).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rpc_echo import HOST, SERVICE, ServerProcess, closed_loop, git_revision, loop_name

import rpc

SCRIPT = Path(__file__).resolve()
INFLIGHT = 64
KINDS = ("direct", "spread", "governed")
PROVIDERS = 3


def governance(router: bool) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "cluster": "failover",
        "retries": 2,
        "balancer": "round_robin",
        "methods": {"echo": {"idempotent": True}},
    }
    if router:
        settings["routers"] = [{"kind": "condition", "rule": "method = echo => port != 1"}]
    return settings


async def client(kind: str, ports: list[int], warmup: float, seconds: float) -> dict[str, Any]:
    payload = os.urandom(100)
    addresses = [f"{HOST}:{port}" for port in ports]
    if kind == "direct":
        consumer = rpc.AsyncClient(addresses[:1], injvm=False)
    elif kind == "spread":
        consumer = rpc.AsyncClient(addresses, injvm=False)
    else:
        consumer = rpc.AsyncClient(addresses, injvm=False)
        consumer.configure(SERVICE, **governance(router="routers" in _known_settings()))
    try:
        echo = consumer.proxy(SERVICE).echo
        if await echo(payload) != payload:
            raise AssertionError("echo returned something else")
        result = await closed_loop(lambda: echo(payload), INFLIGHT, warmup, seconds)
        result["peers"] = len(getattr(consumer.invoker, "channels", {}))
    finally:
        await consumer.close()
    return {**result, "loop": loop_name()}


def _known_settings() -> set[str]:
    return set(rpc.config.Settings().to_dict())


def measure(kind: str, ports: list[int], args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(SCRIPT), "--client", kind, "--ports", ",".join(map(str, ports))]
    cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=args.seconds + args.warmup + 60,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} client failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def orchestrate(args: argparse.Namespace) -> None:
    started = time.monotonic()
    print(
        f"governance_overhead: echo at {INFLIGHT} in flight, governed over {PROVIDERS} providers"
        f" vs direct to one; {args.rounds} rounds of {args.seconds}s (+{args.warmup}s warm-up)",
        flush=True,
    )
    servers = []
    try:
        servers = [ServerProcess("callscope") for _ in range(PROVIDERS)]
        ports = [server.port for server in servers]
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for round_ in range(1, args.rounds + 1):
            for kind in KINDS:
                res = measure(kind, ports, args)
                runs[kind].append(res)
                print(
                    f"  round {round_} {kind:<9} {res['qps']:>8.0f} qps  p50 {res['p50_ms']:6.3f}"
                    f" ms  p99 {res['p99_ms']:6.3f} ms  client CPU/call"
                    f" {res['client_cpu_us_per_call']:5.1f} us  providers used {res['peers']}",
                    flush=True,
                )
    finally:
        for server in servers:
            server.stop()

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    ratio = median("governed", "qps") / median("direct", "qps")
    cpu_ratio = median("governed", "client_cpu_us_per_call") / median(
        "direct", "client_cpu_us_per_call"
    )
    summary = {
        "qps_governed": round(median("governed", "qps"), 1),
        "qps_direct": round(median("direct", "qps"), 1),
        "client_cpu_us_per_call_governed": round(median("governed", "client_cpu_us_per_call"), 1),
        "client_cpu_us_per_call_direct": round(median("direct", "client_cpu_us_per_call"), 1),
        "qps_spread": round(median("spread", "qps"), 1),
        "client_cpu_us_per_call_spread": round(median("spread", "client_cpu_us_per_call"), 1),
        "ratio_client_cpu_governed_vs_direct": round(cpu_ratio, 3),
        "p50_ms_governed": round(median("governed", "p50_ms"), 3),
        "p50_ms_direct": round(median("direct", "p50_ms"), 3),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "inflight": INFLIGHT,
        "providers": PROVIDERS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
        "goal_ratio_ge_0_85": ratio >= 0.85,
        "ratio_qps_governed_vs_direct": round(ratio, 3),
    }
    print(
        f"  ratio_qps_governed_vs_direct {summary['ratio_qps_governed_vs_direct']} (goal >= 0.85);"
        f" took {time.monotonic() - started:.1f}s",
        flush=True,
    )
    print(json.dumps(summary), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="window per measurement")
    parser.add_argument("--warmup", type=float, default=None, help="default: seconds/3 in 0.2..1")
    parser.add_argument("--rounds", type=int, default=3, help="direct/governed pairs")
    parser.add_argument("--client", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--ports", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = min(1.0, max(0.2, args.seconds / 3))
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds and --seconds must be positive")
    return args


def main() -> None:
    args = parse_args()
    if args.client:
        ports = [int(p) for p in args.ports.split(",")]
        result = rpc.run(client(args.client, ports, args.warmup, args.seconds))
        print(json.dumps(result), flush=True)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
