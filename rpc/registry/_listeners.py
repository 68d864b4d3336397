"""Listener bookkeeping shared by the backends: who watches what, and safe delivery."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("callscope.registry")


class Listeners:
    """Listeners per name (service or config key); delivery never lets one break another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, list[Callable[[Any], None]]] = {}

    def add(self, name: str, listener: Callable[[Any], None]) -> Callable[[], bool]:
        """Add; returns a remover that says whether ``name`` has no listener left."""
        with self._lock:
            self._by_name.setdefault(name, []).append(listener)

        def remove() -> bool:
            with self._lock:
                found = self._by_name.get(name, [])
                if listener in found:
                    found.remove(listener)
                if not found:
                    self._by_name.pop(name, None)
                    return True
                return False

        return remove

    def names(self) -> list[str]:
        with self._lock:
            return list(self._by_name)

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._by_name

    def emit(self, name: str, value: Any) -> None:
        with self._lock:
            targets = list(self._by_name.get(name, ()))
        for listener in targets:
            deliver(listener, value, name)


def deliver(listener: Callable[[Any], None], value: Any, name: str) -> None:
    try:
        listener(value)
    except Exception:
        log.exception("callscope: registry listener for %s failed", name)
