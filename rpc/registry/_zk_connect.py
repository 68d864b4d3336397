"""The first connection to ZooKeeper: wait for it while it can come, not once it cannot.

A consumer that starts while ZooKeeper is down has its disk cache to call from; waiting
the whole connect timeout first is waiting for nothing. kazoo tries every address of the
ensemble in turn, then again after a pause: once every address has refused (or timed out)
once, ZooKeeper is down for now, and kazoo goes on connecting in the background.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from kazoo.handlers.threading import SequentialThreadingHandler

__all__ = ["FailureCountingHandler", "wait_connected"]


class FailureCountingHandler(SequentialThreadingHandler):  # type: ignore[misc]
    """kazoo's threading handler, remembering the addresses that failed to connect."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._failed: set[tuple[str, int]] = set()

    def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().create_connection(*args, **kwargs)
        except OSError:
            address = kwargs.get("address", args[0] if args else None)
            if address is not None:
                with self._lock:
                    self._failed.add((str(address[0]), int(address[1])))
            raise

    def failed(self) -> set[tuple[str, int]]:
        with self._lock:
            return set(self._failed)


def addresses(hosts: Any) -> set[tuple[str, int]]:
    """The addresses kazoo tries for ``hosts`` (``client.hosts``), resolved as kazoo does."""
    found: set[tuple[str, int]] = set()
    for host, port in hosts:
        try:
            infos = socket.getaddrinfo(host.strip(), port, 0, 0, socket.IPPROTO_TCP)
        except socket.gaierror:
            continue  # kazoo skips it too
        found.update((str(info[4][0]), int(info[4][1])) for info in infos)
    return found


def wait_connected(client: Any, handler: FailureCountingHandler, timeout: float) -> bool:
    """Start ``client``; wait until it is connected, every address failed once, or ``timeout``."""
    live = client.start_async()
    deadline = time.monotonic() + timeout
    wanted = addresses(client.hosts)
    while not live.is_set() and time.monotonic() < deadline:
        if wanted and wanted <= handler.failed():
            break
        live.wait(0.01)
    return bool(client.connected)
