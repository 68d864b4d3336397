"""Provider lifecycle: publish a started server's services, and leave in the right order.

Graceful shutdown unregisters first (consumers stop choosing this provider),
waits ``settle`` seconds for the news to reach them, then drains the server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from .._server import Server
from ._api import Registry
from ._model import ServiceInstance


class Publication:
    """The registrations of one server; :meth:`stop` is the graceful shutdown."""

    def __init__(self, server: Server, registry: Registry, instances: list[ServiceInstance]):
        self.server = server
        self.registry = registry
        self.instances = instances

    async def stop(self, grace: float = 10.0, settle: float = 0.2) -> None:
        """Unregister every instance, wait ``settle`` s, then drain and stop the server."""
        for instance in self.instances:
            await asyncio.to_thread(self.registry.unregister, instance)
        if settle > 0:
            await asyncio.sleep(settle)
        await self.server.stop(grace)


async def publish(
    server: Server,
    registry: Registry,
    *,
    host: str | None = None,
    weight: int = 100,
    metadata: Mapping[str, Any] | None = None,
) -> Publication:
    """Register every service exported by the started ``server``.

    ``host`` is the address consumers should dial (default: the bound host, or
    this machine's name when bound to every interface). ``metadata`` adds
    placement labels (zone, rack, room...) next to the host name.
    """
    if server.loop is None:
        raise RuntimeError("start the server before publishing it")
    bound = server.host if server.host not in ("", "0.0.0.0", "::") else socket.gethostname()
    address = f"{host or bound}:{server.port}"
    labels = {"host": socket.gethostname(), **(metadata or {})}
    instances = [
        ServiceInstance(spec.name, address, spec.version, spec.group, weight, labels)
        for spec in server.services()
    ]
    for instance in instances:
        await asyncio.to_thread(registry.register, instance)
    return Publication(server, registry, instances)
