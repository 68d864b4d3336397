"""Flow rules from the registry: ``governance/<service>/flow`` sets a service's bulkhead live.

The document is ``{"max_concurrent": 64, "max_queue": 128, "overflow": "busy" |
{"value": <default answer>}}``; it is validated before it is written
(``rpc.config.validate_governance``), and a published server (``rpc.registry.publish``)
applies each push on its loop; deleting the document brings the defaults back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .._errors import BadRequestError, RpcError
from ._concurrency import ConcurrencyLimit

__all__ = ["FlowWatch", "flow_key", "follow_flow", "parse_flow"]

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


class FlowWatch:
    """The watches :func:`follow_flow` set up; :meth:`stop` ends them."""

    def __init__(self) -> None:
        self.stops: list[Callable[[], None]] = []
        self.applied = 0

    def stop(self) -> None:
        stops, self.stops = self.stops, []
        for stop in stops:
            stop()


async def follow_flow(server: Any, registry: Any) -> FlowWatch:
    """Apply ``governance/<service>/flow`` on ``server`` for each service it exports."""
    loop = asyncio.get_running_loop()
    watch = FlowWatch()

    def listener(service: str) -> Callable[[Any], None]:
        def pushed(document: Any) -> None:
            try:
                limit = parse_flow(None if document is None else document.value)
            except RpcError as err:  # refused before storing: only an older writer
                log.warning("callscope: ignoring %s: %s", flow_key(service), err)
                return

            def apply() -> None:
                server.limit(service, limit)
                watch.applied += 1

            loop.call_soon_threadsafe(apply)  # bulkheads live on the server's loop

        return pushed

    def start() -> None:
        for name in sorted({spec.name for spec in server.services()}):
            try:
                watch.stops.append(registry.watch_config(flow_key(name), listener(name)))
            except RpcError as err:
                log.warning("callscope: cannot watch %s: %s", flow_key(name), err)

    await asyncio.to_thread(start)
    return watch
