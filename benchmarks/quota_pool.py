"""Leased quota pool vs a static split: goodput under uneven demand, and the cap held at scale.

A cluster-wide cap (``--cap`` calls/s) over ``--processes`` x ``--instances`` provider
instances, each a :class:`rpc.flow.QuotaLimiter` with its own registry client, leasing
from one embedded registry (its own process). Instance ``i`` is offered
``RATES[i % 5]`` calls/s (uneven: some want far less than an equal share, some far more).

The named peer, measured in the same run on the same offered calls: a **static split**,
the seed's first scheme -- each instance limited to ``cap / n`` by a local bucket, with
no exchange. Goodput is the calls admitted per second over the measured window; a static
split wastes the share of quiet instances while busy ones are refused.

Usage::

    .venv/bin/python benchmarks/quota_pool.py --processes 5 --instances 10 --period 1

Last line: JSON with ``ratio_goodput_leased_vs_static``, ``leased_per_s`` (should stay
within 10% of the cap, never far above), ``lease_age_max_s`` (a lease lapses at 2 periods).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _registry_process import registry_process  # noqa: E402

SERVICE = "bench.Quota"
RATES = (5.0, 10.0, 40.0, 80.0, 160.0)


def worker(url: str, first: int, count: int, share: float, warmup: float, seconds: float) -> None:
    """``count`` instances in this process: leased limiters and static buckets, same load."""
    from rpc import ResourceExhaustedError
    from rpc.flow import QuotaLimiter
    from rpc.flow._quota_bucket import QuotaBucket
    from rpc.registry import connect

    registries = [connect(url) for _ in range(count)]
    limiters = [
        QuotaLimiter(r).start(f"127.0.0.1:{20000 + first + i}", [SERVICE])
        for i, r in enumerate(registries)
    ]
    static = [QuotaBucket(share, 0.1) for _ in range(count)]
    rates = [RATES[(first + i) % len(RATES)] for i in range(count)]
    admitted = {"leased": 0, "static": 0}
    window = [0.0, 0.0]

    def drive() -> None:
        start = time.monotonic()
        sent = [0] * count
        window[0], window[1] = start + warmup, start + warmup + seconds
        while (now := time.monotonic()) < window[1]:
            for i in range(count):
                while sent[i] < (now - start) * rates[i]:
                    sent[i] += 1
                    counting = now >= window[0]
                    try:
                        limiters[i].admit(SERVICE, "call", None)
                        admitted["leased"] += counting
                    except ResourceExhaustedError:
                        pass
                    admitted["static"] += counting and static[i].take()
            time.sleep(0.005)

    thread = threading.Thread(target=drive)
    thread.start()
    thread.join()
    snaps = [lim.snapshot()[SERVICE] for lim in limiters]
    print(
        json.dumps(
            {
                "leased": admitted["leased"] / seconds,
                "static": admitted["static"] / seconds,
                "offered": sum(rates),
                "lease_age_max_s": max(s["lease_age_s"] or 0.0 for s in snaps),
                "states": sorted({s["state"] for s in snaps}),
            }
        ),
        flush=True,
    )
    for limiter in limiters:
        limiter.close()
    for registry in registries:
        registry.close()


def main(args: argparse.Namespace) -> dict[str, Any]:
    from rpc.flow import quota_key
    from rpc.registry import connect

    n = args.processes * args.instances
    with registry_process() as (url, _):
        admin = connect(url)
        admin.put_config(quota_key(SERVICE), {"qps": args.cap, "period_s": args.period})
        print(
            f"quota_pool: cap {args.cap:g}/s over {n} instances ({args.processes} processes),"
            f" period {args.period:g} s, offered {RATES} calls/s in turn;"
            f" peer: a static split of {args.cap / n:.1f}/s each",
            flush=True,
        )
        share, window = str(args.cap / n), [str(args.warmup), str(args.seconds)]
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    url,
                    str(p * args.instances),
                    str(args.instances),
                    share,
                    *window,
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            for p in range(args.processes)
        ]
        results = []
        for process in workers:
            assert process.stdout is not None
            results.append(json.loads(process.stdout.readline()))
            process.wait(timeout=60)
        admin.close()
    leased = sum(r["leased"] for r in results)
    static = sum(r["static"] for r in results)
    offered = sum(r["offered"] for r in results)
    print(f"  offered {offered:.0f}/s: leased pool admitted {leased:.0f}/s, static {static:.0f}/s")
    return {
        "ratio_goodput_leased_vs_static": round(leased / max(static, 1e-9), 3),
        "leased_per_s": round(leased, 1),
        "static_per_s": round(static, 1),
        "cap": args.cap,
        "offered_per_s": offered,
        "instances": n,
        "period_s": args.period,
        "lease_age_max_s": round(max(r["lease_age_max_s"] for r in results), 3),
        "states": sorted({s for r in results for s in r["states"]}),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, first, count, share, warmup, seconds = sys.argv[2:8]
        worker(url, int(first), int(count), float(share), float(warmup), float(seconds))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--instances", type=int, default=10, help="per process")
    parser.add_argument("--cap", type=float, default=1000.0, help="cluster-wide calls/s")
    parser.add_argument("--period", type=float, default=1.0, help="lease period T, seconds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    summary = main(parser.parse_args())
    print(json.dumps(summary))
