"""A provider process for the registry tests: serves ``reg.Echo`` and registers it.

``python -m tests.registry.provider URL`` prints its address once registered;
SIGTERM shuts it down gracefully (unregister, then drain); SIGUSR1 expires its
ZooKeeper session the way a network partition would (another client closes it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import rpc
from rpc.registry import connect, publish


@rpc.service("reg.Echo")
class Echo:
    async def echo(self, value: object) -> object:
        return value

    def pid(self) -> int:
        return os.getpid()


def expire_session(registry: object) -> None:
    from kazoo.client import KazooClient

    client = registry.client  # type: ignore[attr-defined]
    hosts = ",".join(f"{host}:{port}" for host, port in client.hosts)
    twin = KazooClient(hosts=hosts, client_id=client.client_id)
    twin.start(timeout=5)
    twin.stop()
    twin.close()


async def main(url: str) -> None:
    registry = connect(url)
    server = rpc.Server("127.0.0.1", 0, injvm=False)
    server.export(Echo())
    await server.start()
    publication = await publish(server, registry, metadata={"zone": "a", "rack": "r1"})
    print(server.address, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(
        signal.SIGUSR1, lambda: loop.run_in_executor(None, expire_session, registry)
    )
    await stop.wait()
    await publication.stop(grace=2.0, settle=0.1)
    await asyncio.to_thread(registry.close)


if __name__ == "__main__":
    rpc.run(main(sys.argv[1]))
