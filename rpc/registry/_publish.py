"""Provider lifecycle: publish a started server's services, and leave in the right order.

Published services follow their mask documents (``governance/<service>/mask``,
``rpc.degrade``): a masked call is answered by its fallback on this server too. They
also lease their slice of ``governance/<service>/quota`` (``rpc.flow.QuotaLimiter``).
Graceful shutdown unregisters first (consumers stop choosing this provider),
waits ``settle`` seconds for the news to reach them, then drains the server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from .._server import Server
from ..degrade import MaskWatch, follow_masks
from ..flow import FlowWatch, QuotaLimiter, follow_flow
from ._api import Registry
from ._model import ServiceInstance


class Publication:
    """The registrations of one server; :meth:`stop` is the graceful shutdown."""

    def __init__(
        self,
        server: Server,
        registry: Registry,
        instances: list[ServiceInstance],
        masks: MaskWatch | None = None,
        flow: FlowWatch | None = None,
        quota: QuotaLimiter | None = None,
    ):
        self.server = server
        self.registry = registry
        self.instances = instances
        self.masks = masks
        self.flow = flow
        self.quota = quota

    async def stop(self, grace: float = 10.0, settle: float = 0.2) -> None:
        """Unregister every instance, wait ``settle`` s, then drain and stop the server."""
        if self.masks is not None:
            await asyncio.to_thread(self.masks.stop)
        if self.flow is not None:
            await asyncio.to_thread(self.flow.stop)
        for instance in self.instances:
            await asyncio.to_thread(self.registry.unregister, instance)
        if settle > 0:
            await asyncio.sleep(settle)
        await self.server.stop(grace)
        if self.quota is not None:  # drained: hand the quota slice back to the pool
            await asyncio.to_thread(self.quota.close)


async def publish(
    server: Server,
    registry: Registry,
    *,
    host: str | None = None,
    weight: int = 100,
    metadata: Mapping[str, Any] | None = None,
    masks: bool = True,
    flow: bool = True,
    quota: bool = True,
) -> Publication:
    """Register every service exported by the started ``server``.

    ``host`` is the address consumers should dial (default: the bound host, or
    this machine's name when bound to every interface). ``metadata`` adds
    placement labels (zone, rack, room...) next to the host name. ``masks``: follow
    each service's mask document and apply it here. ``flow``: likewise its flow document
    (``governance/<service>/flow``: the service's concurrency limits, ``rpc.flow``).
    ``quota``: gate the server with a :class:`~rpc.flow.QuotaLimiter` leasing its slice of
    each service's cluster-wide quota (``governance/<service>/quota``) while one is set
    (unless the server has a quota gate of its own).
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
    watch = await follow_masks(server, registry) if masks else None
    limits = await follow_flow(server, registry) if flow else None
    limiter = None
    if quota and not any(isinstance(gate, QuotaLimiter) for gate in server.gates):
        limiter = QuotaLimiter(registry)
        server.add_gate(limiter)
        limiter.start(address, [spec.name for spec in server.services()])
    return Publication(server, registry, instances, watch, limits, limiter)
