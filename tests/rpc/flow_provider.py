"""A provider in its own process for the flow-control tests: ``python -m tests.rpc.flow_provider
'{"concurrency": {...}, "tiers": {...}, "interval": 0.25}'``. Prints its address on the first
line of stdout, then serves ``flow.Work`` until killed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
import time
from typing import Any

import rpc
from rpc.flow import ConcurrencyLimit, DynamicFlow, TierRules

SERVICE = "flow.Work"


@rpc.service(SERVICE)
class Work:
    """Work of a known cost, CPU load on demand, and what the flow control sees."""

    def __init__(self, flow: DynamicFlow | None) -> None:
        self.flow = flow
        self.tiers: list[str] = []
        if flow is not None:
            flow.listeners.append(lambda old, new, averages: self.tiers.append(new))

    async def work(self, ms: float) -> float:
        await asyncio.sleep(ms / 1000)
        return ms

    def burn(self, seconds: float, threads: int = 2) -> None:
        """Busy ``threads`` for ``seconds`` (bounded): hashing releases the GIL, so the
        load is real CPU while the loop keeps serving."""
        seconds = min(float(seconds), 30.0)
        chunk = b"x" * (1 << 20)

        def spin() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                hashlib.sha256(chunk).digest()

        for _ in range(min(int(threads), 4)):
            threading.Thread(target=spin, daemon=True).start()

    def state(self) -> dict[str, Any]:
        flow = self.flow
        return {
            "tier": flow.tier if flow else "normal",
            "tiers": self.tiers,
            "averages": flow.averages if flow else {},
        }


async def main(options: dict[str, Any]) -> None:
    concurrency = options.get("concurrency")
    server = rpc.Server(
        "127.0.0.1",
        0,
        injvm=False,
        concurrency=ConcurrencyLimit.from_dict(concurrency) if concurrency else None,
    )
    flow = None
    if "tiers" in options:
        flow = DynamicFlow(
            TierRules.from_dict(options["tiers"]),
            interval=options.get("interval", 0.25),
            window=options.get("window", 4),
        ).attach(server)
    server.export(Work(flow))
    await server.start()
    print(server.address, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    rpc.run(main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
