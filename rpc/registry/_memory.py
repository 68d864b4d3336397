"""The in-process registry: for tests and single-process use (``memory://``).

No network, so no leases: an instance stays until it is unregistered or the
registry is closed. Listeners are called synchronously on the writer's thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._api import ConfigListener, InstancesListener
from ._listeners import Listeners
from ._model import ConfigDocument, Consumer, ServiceInstance, check_key, check_name
from ._state import RegistryState


class MemoryRegistry:
    """Registrations, consumers and configuration held in this process."""

    def __init__(self) -> None:
        self._state = RegistryState()
        self._services = Listeners()
        self._config = Listeners()

    # -- providers --------------------------------------------------------
    def register(self, instance: ServiceInstance) -> None:
        if self._state.put_instance(instance):
            self._notify(instance.service)

    def unregister(self, instance: ServiceInstance) -> None:
        if self._state.remove_instance(instance.service, instance.id):
            self._notify(instance.service)

    def lookup(self, service: str) -> list[ServiceInstance]:
        return self._state.lookup(service)

    def services(self) -> list[str]:
        return self._state.services()

    def consumers(self, service: str | None = None) -> list[Consumer]:
        return self._state.list_consumers(service)

    def subscribe(self, service: str, listener: InstancesListener) -> Callable[[], None]:
        """Call ``listener`` with the full instance list now and on every change."""
        check_name(service, "service")
        consumer = Consumer(service, f"{Consumer(service).id}:{id(listener):x}")
        self._state.put_consumer(consumer)
        remove = self._services.add(service, listener)
        listener(self.lookup(service))

        def unsubscribe() -> None:
            remove()
            self._state.remove_consumer(service, consumer.id)

        return unsubscribe

    def _notify(self, service: str) -> None:
        self._services.emit(service, self.lookup(service))

    # -- configuration ----------------------------------------------------
    def get_config(self, key: str) -> ConfigDocument | None:
        return self._state.get_config(key)

    def put_config(self, key: str, value: Any, expected: int | None = None) -> ConfigDocument:
        doc = self._state.put_config(key, value, expected)
        self._config.emit(key, doc)
        return doc

    def delete_config(self, key: str, expected: int | None = None) -> None:
        self._state.delete_config(key, expected)
        self._config.emit(key, None)

    def list_config(self, prefix: str = "") -> list[ConfigDocument]:
        return self._state.list_config(prefix)

    def watch_config(self, key: str, listener: ConfigListener) -> Callable[[], None]:
        """Call ``listener`` with the document (or ``None``) now and on every change."""
        remove = self._config.add(check_key(key), listener)
        listener(self.get_config(key))

        def unwatch() -> None:
            remove()

        return unwatch

    def close(self) -> None:
        for service in self.services():
            for instance in self.lookup(service):
                self.unregister(instance)
