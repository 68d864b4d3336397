"""The client's :class:`~rpc.Directory` on top of a registry, kept current by push."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from .._directory import Provider
from ._model import ServiceInstance

Listener = Callable[[Sequence[Provider]], None]


class Registry(Protocol):
    def subscribe(
        self, service: str, listener: Callable[[list[ServiceInstance]], None]
    ) -> Callable[[], None]: ...


class RegistryDirectory:
    """Providers per service, from the registry's pushes; reads are a dict lookup."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._instances: dict[str, list[ServiceInstance]] = {}
        self._providers: dict[tuple[str, str, str], tuple[Provider, ...]] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._listeners: dict[str, list[Listener]] = {}

    def providers(self, service: str, version: str = "", group: str = "") -> Sequence[Provider]:
        cached = self._providers.get((service, version, group))
        if cached is not None:
            return cached
        if service not in self._unsubscribe:
            self._watch(service)
        with self._lock:
            instances = self._instances.get(service, [])
            found = tuple(
                Provider(i.address, i.weight, i.metadata)
                for i in instances
                if i.group == group and (i.version == version or version in ("", "*"))
            )
            self._providers[(service, version, group)] = found
        return found

    def subscribe(self, service: str, listener: Listener) -> Callable[[], None]:
        self._listeners.setdefault(service, []).append(listener)
        if service not in self._unsubscribe:
            self._watch(service)
        return lambda: self._listeners.get(service, []).remove(listener)

    def _watch(self, service: str) -> None:
        self._unsubscribe[service] = lambda: None  # the first push arrives during subscribe
        self._unsubscribe[service] = self._registry.subscribe(
            service, lambda instances: self._update(service, instances)
        )

    def _update(self, service: str, instances: list[ServiceInstance]) -> None:
        with self._lock:
            self._instances[service] = list(instances)
            for key in [k for k in self._providers if k[0] == service]:
                del self._providers[key]
        for listener in list(self._listeners.get(service, ())):
            listener(self.providers(service))

    def close(self) -> None:
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()
