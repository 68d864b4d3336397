"""Breaker overhead: the consumer's CPU per call with a circuit breaker on (closed) vs none.

What a breaker costs is client CPU (the provider never knows), so this measures the
consumer alone, on the cluster's double invoker (``rpc.cluster.MockInvoker``: no socket,
no provider): *plain*, an ``AsyncClient`` over three providers with the defaults;
*breaker*, the same with ``breaker`` rules for the service (none trips: every outcome is
counted in a rolling window); *masked elsewhere*, plain with a mask in force for another
service (the consumer's mask check). Rounds alternate, each variant taking its turn
first; best of ``--rounds`` per variant (process CPU time, so a busy machine's other work
counts less).

Usage::

    .venv/bin/python benchmarks/breaker_overhead.py --calls 30000 --rounds 7

Progress lines first; the last line is one JSON object with ``us_per_call_*`` and
``ratio_cpu_breaker_vs_plain`` (goal: the breaker adds at most 2 µs a call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable

import rpc
from rpc.cluster import MockInvoker

PROVIDERS = ["10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"]
BREAKER = {"error_ratio": 0.5, "min_calls": 20}


def plain(client: rpc.AsyncClient) -> None:
    """The defaults."""


def breaker(client: rpc.AsyncClient) -> None:
    client.configure("bench.Svc", breaker=BREAKER)


def masked_elsewhere(client: rpc.AsyncClient) -> None:
    client.cluster.masks.set("bench.Other", rpc.degrade.parse_mask({"action": "null"}))


VARIANTS: dict[str, Callable[[rpc.AsyncClient], None]] = {
    "plain": plain,
    "breaker": breaker,
    "masked_elsewhere": masked_elsewhere,
}


async def cpu_per_call(variant: Callable[[rpc.AsyncClient], None], calls: int) -> float:
    client = rpc.AsyncClient(PROVIDERS, invoker=MockInvoker(lambda inv: 1), injvm=False)
    variant(client)
    proxy = client.proxy("bench.Svc")
    for _ in range(min(calls, 2000)):  # warm: strategies built, windows allocated
        await proxy.get()
    start = time.process_time()
    for _ in range(calls):
        await proxy.get()
    spent = time.process_time() - start
    await client.close()
    return spent / calls * 1e6


async def main(calls: int, rounds: int) -> dict[str, float]:
    best = {name: float("inf") for name in VARIANTS}
    names = list(VARIANTS)
    for number in range(1, rounds + 1):
        shift = number % len(names)  # each variant takes its turn first (the slow seat)
        for name in names[shift:] + names[:shift]:
            best[name] = min(best[name], await cpu_per_call(VARIANTS[name], calls))
        shown = ", ".join(f"{n} {v:.2f}" for n, v in best.items())
        print(f"round {number}/{rounds}: best µs/call so far: {shown}", flush=True)
    return best


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    best = asyncio.run(main(args.calls, args.rounds))
    summary = {f"us_per_call_{name}": round(value, 3) for name, value in best.items()}
    summary["added_us_breaker"] = round(best["breaker"] - best["plain"], 3)
    summary["ratio_cpu_breaker_vs_plain"] = round(best["breaker"] / best["plain"], 3)
    summary["ratio_cpu_masked_elsewhere_vs_plain"] = round(
        best["masked_elsewhere"] / best["plain"], 3
    )
    print(json.dumps(summary))
