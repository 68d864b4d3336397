"""One process of the demo's shop (``callscope demo-service payment#2 ...``, internal).

It serves its service on an ephemeral port of 127.0.0.1, publishes it to the registry,
calls the services downstream through the registry (the cluster layer: failover over a
balancer), is traced by ``import instrument.auto`` into the spool, and shows the faults
the supervisor switches on (:class:`~callscope.demo.faults.FaultSwitch`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import rpc
from rpc.registry import REGISTRY_URL_ENV

from .faults import FaultSwitch
from .topology import SERVICES, Instance

__all__ = ["run_service"]

WORK_S = 0.002
"""What a call costs a healthy instance (a database round trip, say)."""


class _Shop:
    """What every service of the shop shares: the faults it suffers, the calls it makes."""

    def __init__(self, faults: FaultSwitch, client: rpc.AsyncClient | None) -> None:
        self._faults = faults
        self._client = client

    async def _work(self) -> None:
        self._faults.refresh()
        await asyncio.sleep(WORK_S + self._faults.delay_s)
        if self._faults.should_fail():
            raise rpc.InternalError("injected failure (callscope demo --fail)")

    def _downstream(self, service: str) -> Any:
        assert self._client is not None
        return self._client.proxy(SERVICES[service].rpc_name)


@rpc.service("gateway.GatewayService")
class Gateway(_Shop):
    async def checkout(self, item: str, quantity: int) -> dict[str, Any]:
        await self._work()
        return await self._downstream("orders").create(item, quantity)


@rpc.service("orders.OrderService")
class Orders(_Shop):
    async def create(self, item: str, quantity: int) -> dict[str, Any]:
        await self._work()
        await self._downstream("inventory").reserve(item, quantity)
        receipt = await self._downstream("payment").charge(350 * quantity)
        return {"item": item, "quantity": quantity, "receipt": receipt}


@rpc.service("inventory.InventoryService")
class Inventory(_Shop):
    async def reserve(self, item: str, quantity: int) -> bool:
        await self._work()
        return True


@rpc.service("payment.PaymentService")
class Payment(_Shop):
    async def charge(self, cents: int) -> int:
        await self._work()
        return await self._downstream("ledger").record(cents)


@rpc.service("ledger.LedgerService")
class Ledger(_Shop):
    def __init__(self, faults: FaultSwitch, client: rpc.AsyncClient | None) -> None:
        super().__init__(faults, client)
        self._entries = 0

    async def record(self, cents: int) -> int:
        await self._work()
        self._entries += 1
        return self._entries


HANDLERS: dict[str, type[_Shop]] = {
    "gateway": Gateway,
    "orders": Orders,
    "inventory": Inventory,
    "payment": Payment,
    "ledger": Ledger,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-service")  # internal: no help, so not listed
    p.add_argument("instance", type=Instance.parse)
    p.add_argument("--registry", default=os.environ.get(REGISTRY_URL_ENV),
                   required=not os.environ.get(REGISTRY_URL_ENV))  # fmt: skip
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--balancer", default="p2c")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=0, help="port to bind (0: any free)")
    p.add_argument("--advertise", help="host consumers dial (default: the bound one)")
    p.set_defaults(handler=run_service)


def run_service(args: argparse.Namespace) -> int:
    import instrument.auto  # noqa: F401 - traced through the CALLSCOPE_* variables it was given

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port is within 0..65535, not {args.port}")
    rpc.run(_serve(args))
    return 0


async def _serve(args: argparse.Namespace) -> None:
    from rpc.registry import RegistryDirectory, connect, publish

    instance: Instance = args.instance
    registry_url: str = args.registry
    workdir: Path = args.workdir
    spec = SERVICES[instance.service]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    directory = client = None
    if spec.calls:
        cache = workdir / "cache" / instance.label
        directory = RegistryDirectory(connect(registry_url), cache_dir=cache)
        client = rpc.AsyncClient(directory, injvm=False, cluster="failover", balancer=args.balancer,
                                 timeout=5.0)  # fmt: skip
    registry = connect(registry_url)
    server = rpc.Server(args.host, args.port)
    server.export(HANDLERS[instance.service](FaultSwitch(workdir / "faults", instance), client))
    await server.start()
    publication = await publish(
        server, registry, host=args.advertise, metadata={"demo": instance.label}
    )
    _announce(workdir / "run" / f"{instance.label}.addr", server.address)
    try:
        await stop.wait()
    finally:
        await publication.stop(grace=5.0)
        if client is not None:
            await client.close()
        if directory is not None:
            directory.close()
        registry.close()


def _announce(path: Path, address: str) -> None:
    """The supervisor waits for this file: the instance serves and is registered."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(address)
    os.replace(temporary, path)
