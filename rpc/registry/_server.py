"""``callscope registry``: the embedded registry server process (RPC + SQLite)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._loop import run_until_signalled
from .._server import Server
from ._auth import Principal
from ._quotas import Quotas
from ._service import RegistryService, bind_caller
from ._store import Store

log = logging.getLogger("callscope.registry")

DEFAULT_PORT = 2380


class RegistryServer:
    """An embedded registry: serves ``callscope.Registry`` on ``host:port``, state in ``path``.

    With ``tokens`` (token → :class:`Principal`), a client without a valid token
    gets UNAUTHENTICATED and each call is checked against its principal's grants.
    ``quotas`` bounds what each credential may hold (:class:`Quotas`).
    """

    def __init__(
        self,
        path: str | Path,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        tokens: Mapping[str, Principal] | None = None,
        quotas: Quotas | None = None,
        **server_options: Any,
    ) -> None:
        self.store = Store(path)
        self.service = RegistryService(self.store, quotas)
        server_options.setdefault("injvm", False)
        self.server = Server(
            host,
            port,
            tokens=dict(tokens) if tokens is not None else None,
            interceptors=[bind_caller],
            **server_options,
        )
        self.server.export(self.service)

    @property
    def address(self) -> str:
        return self.server.address

    async def start(self) -> RegistryServer:
        await self.service._start()
        await self.server.start()
        log.info("callscope registry on %s, data in %s", self.address, self.store.path)
        return self

    async def stop(self, grace: float = 2.0) -> None:
        await self.service._stop()
        await self.server.stop(grace)
        self.store.close()

    async def __aenter__(self) -> RegistryServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def run(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM; ``ready(address)`` is called once listening."""
        run_until_signalled(
            self.start, self.stop, None if ready is None else lambda: ready(self.address)
        )
