"""A test app: one process of an A → B → C chain (run as ``chain.py ROLE [NEXT_ADDRESS]``).

It knows nothing of tracing: tests start it with ``import instrument.auto`` (``-c``) or
under ``callscope run``. It prints its address, serves until stdin closes, and
for role ``A`` makes ``CALLS`` calls down the chain first, then exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import rpc

log = logging.getLogger("chain")


@rpc.service("chain.Hop")
class Hop:
    def __init__(self, role: str, next_address: str | None) -> None:
        self.role = role
        self.client = rpc.AsyncClient([next_address], injvm=False) if next_address else None

    async def hop(self, path: str) -> str:
        log.warning("hop %s at %s", path, self.role)
        if self.client is None:
            return path + self.role
        return await self.client.proxy("chain.Hop").hop(path + self.role)


async def main() -> None:
    role = sys.argv[1]
    next_address = sys.argv[2] if len(sys.argv) > 2 else None
    if role == "A":
        async with rpc.AsyncClient([next_address], injvm=False) as client:
            for _ in range(int(os.environ.get("CALLS", "3"))):
                print(await client.proxy("chain.Hop").hop("A"), flush=True)
        return
    server = rpc.Server("127.0.0.1", 0, injvm=False)
    server.export(Hop(role, next_address))
    await server.start()
    print(server.address, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop(grace=1.0)


if __name__ == "__main__":
    asyncio.run(main())
