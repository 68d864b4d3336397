"""Flow rules from the registry, validated before they are written
(``rpc.config.validate_governance``) and applied live, on its loop, by a server published
with ``rpc.registry.publish``; deleting a document brings the defaults back.

* ``governance/<service>/flow``: the service's bulkhead, ``{"max_concurrent": 64,
  "max_queue": 128, "overflow": "busy" | {"value": <default answer>}}``.
* ``governance/_global/flow``: the whole server's, ``{"connections": {"max_total": n,
  "max_per_address": n}, "tiers": <TierRules as a map>}``; tiers attach a
  :class:`DynamicFlow` to the server if it has none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._errors import BadRequestError, RpcError
from .._pushed import on_valid
from ._concurrency import ConcurrencyLimit
from ._connections import ConnectionLimits
from ._dynamic import DynamicFlow, TierRules

__all__ = [
    "GLOBAL_FLOW",
    "FlowWatch",
    "ServerFlow",
    "flow_key",
    "follow_flow",
    "parse_flow",
    "parse_server_flow",
    "validate_flow",
]

GLOBAL_FLOW = "governance/_global/flow"

log = logging.getLogger("callscope.rpc")


def flow_key(service: str) -> str:
    return f"governance/{service}/flow"


def parse_flow(value: Any) -> ConcurrencyLimit | None:
    """The limits a flow document sets (``None``: none, back to the defaults)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequestError("a flow document is a map: max_concurrent, max_queue, overflow")
    try:
        return ConcurrencyLimit.from_dict(value)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None


@dataclass(frozen=True)
class ServerFlow:
    """What ``governance/_global/flow`` sets: connection caps and tier rules (None: unset)."""

    max_connections: int | None = None
    max_connections_per_address: int | None = None
    tiers: TierRules | None = None


def parse_server_flow(value: Any) -> ServerFlow:
    """The server-wide flow rules of a ``governance/_global/flow`` document (validated)."""
    if value is None:
        return ServerFlow()
    if not isinstance(value, dict) or set(value) - {"connections", "tiers"}:
        raise BadRequestError("the server's flow document is a map: connections, tiers")
    try:
        connections = value.get("connections") or {}
        if not isinstance(connections, dict) or set(connections) - {"max_total", "max_per_address"}:
            raise ValueError("connections is a map: max_total, max_per_address")
        total, per_address = connections.get("max_total"), connections.get("max_per_address")
        ConnectionLimits(  # the same checks as the server's
            1 if total is None else total, 1 if per_address is None else per_address
        )
        tiers = value.get("tiers")
        return ServerFlow(total, per_address, None if tiers is None else TierRules.from_dict(tiers))
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None


def validate_flow(scope: str, value: Any) -> None:
    """Refuse a flow document no server could use (``scope``: a service or ``_global``)."""
    if scope == "_global":
        parse_server_flow(value)
    else:
        parse_flow(value)


class FlowWatch:
    """The watches :func:`follow_flow` set up; :meth:`stop` ends them."""

    def __init__(self, defaults: tuple[int, int] = (10_000, 1_000)) -> None:
        self.stops: list[Callable[[], None]] = []
        self.applied = 0
        self.defaults = defaults  # the server's own connection caps, restored when lifted
        self.tiers_set = False

    def stop(self) -> None:
        stops, self.stops = self.stops, []
        for stop in stops:
            stop()


async def follow_flow(server: Any, registry: Any) -> FlowWatch:
    """Apply ``governance/<service>/flow`` on ``server`` for each service it exports."""
    loop = asyncio.get_running_loop()
    limits = server.connection_limits
    watch = FlowWatch((limits.max_total, limits.max_per_address))

    def listener(service: str) -> Callable[[Any], None]:
        def apply(limit: ConcurrencyLimit | None) -> None:
            server.limit(service, limit)
            watch.applied += 1

        # bulkheads live on the server's loop
        return on_valid(flow_key(service), parse_flow,
                        lambda limit: loop.call_soon_threadsafe(apply, limit))  # fmt: skip

    pushed_server = on_valid(
        GLOBAL_FLOW, parse_server_flow, lambda rules: loop.call_soon_threadsafe(apply_server, rules)
    )

    def apply_server(rules: ServerFlow) -> None:
        limits = server.connection_limits
        limits.configure(
            rules.max_connections or watch.defaults[0],
            rules.max_connections_per_address or watch.defaults[1],
        )
        dynamic = next((g for g in server.gates if isinstance(g, DynamicFlow)), None)
        if rules.tiers is not None:
            if dynamic is None:
                DynamicFlow(rules.tiers).attach(server)
            else:
                dynamic.configure(rules.tiers)
        elif dynamic is not None and watch.tiers_set:  # lifted: sample on, limit nothing
            dynamic.configure(TierRules(dynamic.rules.thresholds, {}))
        watch.tiers_set = rules.tiers is not None
        watch.applied += 1

    def start() -> None:
        try:
            watch.stops.append(registry.watch_config(GLOBAL_FLOW, pushed_server))
        except RpcError as err:
            log.warning("callscope: cannot watch %s: %s", GLOBAL_FLOW, err)
        for name in sorted({spec.name for spec in server.services()}):
            try:
                watch.stops.append(registry.watch_config(flow_key(name), listener(name)))
            except RpcError as err:
                log.warning("callscope: cannot watch %s: %s", flow_key(name), err)

    await asyncio.to_thread(start)
    return watch
