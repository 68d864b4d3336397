"""A provider in its own process, for tests that kill one: ``python -m tests.rpc.provider_process
NAME [DELAY]``. Prints its address on the first line of stdout, then serves until killed."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import rpc

SERVICE = "live.Store"


@rpc.service(SERVICE)
class Store:
    """Answers with its own name after ``delay`` seconds; counts the calls it started."""

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.delay = delay
        self.started: Counter[str] = Counter()

    async def get(self, key: str) -> str:
        self.started["get"] += 1
        await asyncio.sleep(self.delay)
        return self.name

    async def put(self, key: str) -> str:
        self.started["put"] += 1
        await asyncio.sleep(self.delay)
        return self.name

    def count(self, method: str) -> int:
        return self.started[method]


async def main(name: str, delay: float) -> None:
    server = rpc.Server("127.0.0.1", 0, injvm=False)
    server.export(Store(name, delay))
    await server.start()
    print(server.address, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    rpc.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0))
