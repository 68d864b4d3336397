"""A consumer process for the failcache restart test: ``python -m tests.rpc.failcache_consumer
FILE ADDRESS enqueue|deliver``. ``enqueue`` makes three calls that fail (the provider is
down) and exits; ``deliver`` starts with the same file and waits until it is delivered."""

from __future__ import annotations

import asyncio
import sys

import rpc

from .provider_process import SERVICE


async def main(path: str, address: str, mode: str) -> None:
    client = rpc.AsyncClient(
        [address],
        injvm=False,
        timeout=1.0,
        governance={
            "cluster": "failcache",
            "failcache_path": path,
            "failcache_period": 1.0 if mode == "enqueue" else 0.2,
            "failcache_tries": 100,
        },
    )
    if mode == "enqueue":
        for key in ("a", "b", "c"):
            assert await client.generic(SERVICE, "put", key) is None  # kept for later
        print(client.cluster.counters[(SERVICE, "failcache.enqueue")], flush=True)
    else:
        queue = client.cluster.failcache(client.cluster.settings(SERVICE))
        for _ in range(200):
            if not queue.counts().get("waiting"):
                break
            await asyncio.sleep(0.05)
        print(client.cluster.counters[(SERVICE, "failcache.delivered")], flush=True)
    await client.close()


if __name__ == "__main__":
    rpc.run(main(*sys.argv[1:4]))
