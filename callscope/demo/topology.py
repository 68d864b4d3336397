"""The demo's shop: which services exist, how many instances each runs, who calls whom.

``loadgen → gateway → orders → {inventory, payment → ledger}``, each service a process per
instance (three payment instances, so one can turn slow while the others take over).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXPECTED_EDGES", "LOADGEN", "SERVICES", "Instance", "ServiceSpec", "instances"]

LOADGEN = "loadgen"
"""The load generator's service name in the spans (it is traced as a client)."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # the traced service name (span.service)
    rpc_name: str  # the RPC interface it exports
    instances: int
    calls: tuple[str, ...] = ()  # the services each request goes on to


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("ledger", "ledger.LedgerService", 1),
        ServiceSpec("inventory", "inventory.InventoryService", 1),
        ServiceSpec("payment", "payment.PaymentService", 3, ("ledger",)),
        ServiceSpec("orders", "orders.OrderService", 2, ("inventory", "payment")),
        ServiceSpec("gateway", "gateway.GatewayService", 1, ("orders",)),
    )
}
"""Leaves first: the order processes are started and the reverse of the order they stop."""

EXPECTED_EDGES: frozenset[tuple[str, str]] = frozenset(
    {(LOADGEN, "gateway")}
    | {(spec.name, callee) for spec in SERVICES.values() for callee in spec.calls}
)


@dataclass(frozen=True, order=True)
class Instance:
    """One process of a service: ``payment#2`` is the second payment instance (from 1)."""

    service: str
    index: int

    @property
    def label(self) -> str:
        return f"{self.service}#{self.index}"

    @classmethod
    def parse(cls, label: str) -> Instance:
        service, sep, index = label.partition("#")
        if service not in SERVICES:
            raise ValueError(f"no service {service!r} in the demo; it has {', '.join(SERVICES)}")
        count = SERVICES[service].instances
        if not sep:
            index = "1"
        if not index.isdigit() or not 1 <= int(index) <= count:
            raise ValueError(f"{label!r}: {service} has instances #1..#{count}")
        return cls(service, int(index))


def instances() -> list[Instance]:
    """Every process of the topology, leaves first."""
    return [Instance(s.name, i) for s in SERVICES.values() for i in range(1, s.instances + 1)]
