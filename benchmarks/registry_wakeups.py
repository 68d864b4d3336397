"""What one write costs the embedded registry when many clients long-poll it.

``--watchers`` polls wait on one registry process, each watching its own document. A
writer then writes another document (``--writes`` times, ``--rate`` a second): the
noise a quota ledger makes. Measured twice in the same run, alternating:

* **named**: each poll names the document it watches (what ``EmbeddedRegistry`` sends),
  so the writes wake nobody;
* **unnamed** (the named peer: every poll before names existed, and what a client
  watching more than 1,024 names still sends): every write answers every poll, which
  comes straight back.

Reported: polls answered per write, and the registry process's CPU per write (psutil).
Then one write to each watcher's own document checks every named poll still hears its
own change. Last line: JSON with ``ratio_cpu_per_write_unnamed_vs_named``.

    .venv/bin/python benchmarks/registry_wakeups.py --watchers 200 --writes 200 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _registry_process import registry_process  # noqa: E402

import rpc  # noqa: E402

REGISTRY = "callscope.Registry"


class Watcher:
    """One client's poll loop on its own document, counting the answers."""

    def __init__(self, client: rpc.AsyncClient, n: int, named: bool) -> None:
        self.client, self.key, self.named = client, f"bench/watch/{n}", named
        self.answers = 0
        self.heard = asyncio.Event()

    async def run(self, epoch: str, revision: int) -> None:
        while True:
            names = [f"c:{self.key}"] if self.named else None
            args = (
                (epoch, revision, 30.0, names, f"w-{self.key}")
                if names
                else (epoch, revision, 30.0)
            )
            feed = await self.client.invoke(REGISTRY, "watch", args)
            self.answers += 1
            epoch, revision = feed["epoch"], feed["revision"]
            if self.key in feed["config"]:
                self.heard.set()


async def phase(url: str, pid: int, args: argparse.Namespace, named: bool) -> dict[str, float]:
    address = url.split("://", 1)[1]
    client = rpc.AsyncClient([address], injvm=False, timeout=60.0)
    try:
        feed = await client.invoke(REGISTRY, "watch", ("", 0, 0.0))
        watchers = [Watcher(client, n, named) for n in range(args.watchers)]
        tasks = [asyncio.ensure_future(w.run(feed["epoch"], feed["revision"])) for w in watchers]
        await asyncio.sleep(1.0)  # every poll waiting
        before = sum(w.answers for w in watchers)
        registry = psutil.Process(pid)
        cpu0 = sum(registry.cpu_times()[:2])
        began = time.monotonic()
        for n in range(args.writes):
            await client.invoke(REGISTRY, "put_config", ("bench/noise", {"n": n}))
            await asyncio.sleep(max(0.0, began + (n + 1) / args.rate - time.monotonic()))
        await asyncio.sleep(0.5)  # the last answers come back
        cpu = sum(registry.cpu_times()[:2]) - cpu0
        answers = sum(w.answers for w in watchers) - before
        began = time.monotonic()
        for w in watchers:
            await client.invoke(REGISTRY, "put_config", (w.key, {"v": 1}))
        await asyncio.wait_for(asyncio.gather(*(w.heard.wait() for w in watchers)), 30.0)
        heard_s = time.monotonic() - began
        for task in tasks:
            task.cancel()
        return {
            "answers_per_write": answers / args.writes,
            "cpu_ms_per_write": 1000 * cpu / args.writes,
            "own_writes_heard_s": heard_s,
        }
    finally:
        await client.close()


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="writes per second")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not (1 <= args.watchers <= 4000 and args.writes >= 1 and 0 < args.rate <= 1000):
        parser.error("--watchers 1..4000, --writes >= 1, --rate in (0, 1000]")
    found: dict[str, list[dict[str, float]]] = {"named": [], "unnamed": []}
    with registry_process() as (url, pid):
        for _ in range(args.rounds):
            for kind in ("unnamed", "named"):
                result = asyncio.run(phase(url, pid, args, kind == "named"))
                found[kind].append(result)
                print(
                    f"{kind:8} {args.watchers} polls, {args.writes} writes at {args.rate:g}/s:"
                    f" {result['answers_per_write']:7.1f} answers/write,"
                    f" registry CPU {result['cpu_ms_per_write']:6.2f} ms/write;"
                    f" own writes heard in {result['own_writes_heard_s']:.2f} s",
                    flush=True,
                )
    best = {k: min(r["cpu_ms_per_write"] for r in v) for k, v in found.items()}
    summary = {
        "watchers": args.watchers,
        "writes": args.writes,
        "rate": args.rate,
        "answers_per_write_named": max(r["answers_per_write"] for r in found["named"]),
        "answers_per_write_unnamed": min(r["answers_per_write"] for r in found["unnamed"]),
        "cpu_ms_per_write_named": round(best["named"], 3),
        "cpu_ms_per_write_unnamed": round(best["unnamed"], 3),
        "ratio_cpu_per_write_unnamed_vs_named": round(
            best["unnamed"] / max(best["named"], 1e-6), 2
        ),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
