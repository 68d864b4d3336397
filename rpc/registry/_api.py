"""The one registry interface every backend implements (memory, embedded, ZooKeeper).

Contract:

* ``register`` keeps an instance listed for as long as this registry object lives
  (a lease renewed by heartbeats, or a ZooKeeper session); it is re-registered by
  the backend after a registry restart or a session expiry. ``unregister`` and
  ``close`` remove it at once.
* ``subscribe`` calls the listener with the full instance list once at once, then
  after every change, from a background thread; while the registry is unreachable
  nothing is pushed (the last list stands).
* Configuration documents carry a version for compare-and-set: ``expected=0``
  means "must not exist yet", ``expected=n`` "must be at version n"; a lost race
  raises :class:`~rpc.registry.ConflictError` (code ``CONFLICT``).
* A refused call raises ``UNAUTHENTICATED`` (no or bad credentials) or
  ``PERMISSION_DENIED`` (credentials without the right grant); an unreachable
  registry raises ``UNAVAILABLE``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ._model import ConfigDocument, Consumer, ServiceInstance

InstancesListener = Callable[[list[ServiceInstance]], None]
ConfigListener = Callable[[ConfigDocument | None], None]
Unsubscribe = Callable[[], None]


@runtime_checkable
class Registry(Protocol):
    def register(self, instance: ServiceInstance) -> None: ...
    def unregister(self, instance: ServiceInstance) -> None: ...
    def lookup(self, service: str) -> list[ServiceInstance]: ...
    def subscribe(self, service: str, listener: InstancesListener) -> Unsubscribe: ...
    def services(self) -> list[str]: ...
    def consumers(self, service: str | None = None) -> list[Consumer]: ...
    def get_config(self, key: str) -> ConfigDocument | None: ...
    def put_config(self, key: str, value: Any, expected: int | None = None) -> ConfigDocument: ...
    def delete_config(self, key: str, expected: int | None = None) -> None: ...
    def list_config(self, prefix: str = "") -> list[ConfigDocument]: ...
    def watch_config(self, key: str, listener: ConfigListener) -> Unsubscribe: ...
    def close(self) -> None: ...
