"""Stand-ins for a tracer, to split what tracing costs an echo service into its parts.

``tracing_overhead.py --decompose`` runs the same echo with each of these in place of
callscope's instrumentation:

- ``context-only``: interceptors that only carry what every tracer must send with a
  call (a W3C ``traceparent`` and the caller's name) and do nothing else: the price
  of context propagation through the RPC framework itself.
- ``floor``: about the least a pure-Python tracer can do: draw ids, keep the span in
  a context variable on the server, read the clock twice, queue a tuple; no span
  objects, KPIs, encoding or export. What is left between it and callscope is what
  our spans, KPIs and export cost.

Neither is a product; both exist to be measured against.
"""

from __future__ import annotations

import collections
import random
import time
from contextvars import ContextVar
from typing import Any

import rpc

__all__ = ["VARIANTS", "install"]

VARIANTS = ("context-only", "floor")
_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
_QUEUE_BOUND = 100_000


def install(variant: str, caller: str) -> None:
    """Add the ``variant``'s interceptors to every client and server created afterwards."""
    if variant == "context-only":
        client, server = _context_only(caller), _passthrough
    elif variant == "floor":
        client, server = _floor(caller)
    else:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    rpc.add_global_interceptor(client, side="client")
    rpc.add_global_interceptor(server, side="server")


async def _passthrough(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
    return await call_next(inv)


def _context_only(caller: str) -> rpc.Interceptor:
    async def carry(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        inv.attachments["traceparent"] = _TRACEPARENT
        inv.attachments["caller"] = caller
        return await call_next(inv)

    return carry


def _floor(caller: str) -> tuple[rpc.Interceptor, rpc.Interceptor]:
    current: ContextVar[str | None] = ContextVar("floor_span", default=None)
    ended: collections.deque[tuple[Any, ...]] = collections.deque()
    clock = time.perf_counter_ns
    draw = random.getrandbits

    def keep(item: tuple[Any, ...]) -> None:
        ended.append(item)
        if len(ended) > _QUEUE_BOUND:
            ended.clear()

    async def client(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        parent = current.get()
        ids = draw(192).to_bytes(24, "big").hex()
        inv.attachments["traceparent"] = f"00-{ids[:32]}-{ids[32:]}-01"
        inv.attachments["caller"] = caller
        started = clock()
        result = await call_next(inv)
        keep((inv.service, inv.method, ids, parent, started, clock()))
        return result

    async def server(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        parent = inv.attachments.get("traceparent")
        started = clock()
        token = current.set(parent)
        result = await call_next(inv)
        current.reset(token)
        keep((inv.service, inv.method, parent, started, clock()))
        return result

    return client, server
