"""The in-process registry: for tests and single-process use."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ._model import ServiceInstance

log = logging.getLogger("callscope.registry")

Listener = Callable[[list[ServiceInstance]], None]


class MemoryRegistry:
    """Registrations held in a dict; subscribers are called synchronously on change."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._instances: dict[str, dict[tuple[str, str, str, str], ServiceInstance]] = {}
        self._listeners: dict[str, list[Listener]] = {}

    def register(self, instance: ServiceInstance) -> None:
        with self._lock:
            self._instances.setdefault(instance.service, {})[instance.key] = instance
        self._notify(instance.service)

    def unregister(self, instance: ServiceInstance) -> None:
        with self._lock:
            self._instances.get(instance.service, {}).pop(instance.key, None)
        self._notify(instance.service)

    def lookup(self, service: str) -> list[ServiceInstance]:
        with self._lock:
            return list(self._instances.get(service, {}).values())

    def services(self) -> list[str]:
        with self._lock:
            return sorted(name for name, insts in self._instances.items() if insts)

    def subscribe(self, service: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with the full instance list now and on every change."""
        with self._lock:
            self._listeners.setdefault(service, []).append(listener)
        listener(self.lookup(service))

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(service, [])
                if listener in listeners:
                    listeners.remove(listener)

        return unsubscribe

    def _notify(self, service: str) -> None:
        with self._lock:
            listeners = list(self._listeners.get(service, ()))
        instances = self.lookup(service)
        for listener in listeners:
            try:
                listener(instances)
            except Exception:
                log.exception("callscope: registry listener for %s failed", service)
