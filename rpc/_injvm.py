"""Services exported in this process, and the invoker that calls them without a socket (injvm).

Both interceptor chains still run: the client's around the attempt, the server's
inside :meth:`Server.invoke_local`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ._errors import RpcError, UnavailableError

if TYPE_CHECKING:
    from ._invocation import Invocation
    from ._server import Server

__all__ = ["InjvmInvoker", "exported", "find", "publish", "withdraw"]

PEER = "injvm"  # what spans and KPIs name as the provider of an in-process call

_local: dict[tuple[str, str, str], Server] = {}


def exported() -> bool:
    """Whether anything is exported in this process (a cheap guard for the call path)."""
    return bool(_local)


def publish(key: tuple[str, str, str], server: Server) -> None:
    _local.setdefault(key, server)


def withdraw(key: tuple[str, str, str], server: Server) -> None:
    if _local.get(key) is server:
        del _local[key]


def find(service: str, version: str, group: str) -> Server | None:
    server = _local.get((service, version, group))
    if server is None and version in ("", "*"):
        for (name, _, grp), candidate in _local.items():
            if name == service and grp == group:
                return candidate
    return server


class InjvmInvoker:
    """Hands each attempt to the server in this process that exports the service."""

    def serves(self, inv: Invocation) -> bool:
        """Is ``inv``'s service exported in this process?"""
        return bool(_local) and find(inv.service, inv.version, inv.group) is not None

    def unavailable(self) -> tuple[str, ...]:
        return ()

    async def invoke(self, inv: Invocation) -> Any:
        server = find(inv.service, inv.version, inv.group)
        if server is None or server.loop is None:
            raise UnavailableError(f"in-process provider of {inv.service!r} is gone")
        if inv.oneway:
            _spawn(server, inv)
            return None
        if server.loop is asyncio.get_running_loop():
            return await server.invoke_local(inv)
        future = asyncio.run_coroutine_threadsafe(server.invoke_local(inv), server.loop)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        return None


def _spawn(server: Server, inv: Invocation) -> None:
    async def run() -> None:
        with contextlib.suppress(RpcError):  # oneway: nobody to tell
            await server.invoke_local(inv)

    assert server.loop is not None
    if server.loop is asyncio.get_running_loop():
        task = server.loop.create_task(run())
        _background.add(task)
        task.add_done_callback(_background.discard)
    else:
        asyncio.run_coroutine_threadsafe(run(), server.loop)


_background: set[asyncio.Task[Any]] = set()
