"""The client's :class:`~rpc.Directory` on top of a registry, kept current by push.

Two guards against the registry's failure modes (Dubbo's empty pushes after a
session expiry, dubbo#3921 / #7065):

* provider lists are cached on disk (``cache_dir``): a consumer that starts
  while the registry is down calls the last known providers;
* a push that would empty a non-empty list is held back until a link check
  (a TCP connect to each provider) confirms they are gone; those that still
  answer stay, and are checked again every ``probe_interval`` seconds until the
  registry lists providers again or none answers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from .._directory import Provider, parse_address
from ._listeners import deliver
from ._model import ServiceInstance

log = logging.getLogger("callscope.registry")

Listener = Callable[[Sequence[Provider]], None]


class Subscribable(Protocol):
    def subscribe(
        self, service: str, listener: Callable[[list[ServiceInstance]], None]
    ) -> Callable[[], None]: ...


def reachable(address: str, timeout: float) -> bool:
    """Does anything accept a TCP connection at ``address``? (the link health check)"""
    try:
        host, port = parse_address(address)
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class RegistryDirectory:
    """Providers per service, from the registry's pushes; reads are a dict lookup."""

    def __init__(
        self,
        registry: Subscribable,
        *,
        cache_dir: str | Path | None = None,
        probe_interval: float = 1.0,
        probe_timeout: float = 0.5,
    ) -> None:
        self._registry = registry
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._lock = threading.RLock()
        self._instances: dict[str, list[ServiceInstance]] = {}
        self._providers: dict[tuple[str, str, str], tuple[Provider, ...]] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._held: set[str] = set()  # services whose empty push awaits confirmation
        self._wake = threading.Event()
        self._closed = False
        self._guard: threading.Thread | None = None

    @property
    def registry(self) -> Subscribable:
        """The registry this directory follows (consumers also watch its config documents)."""
        return self._registry

    def providers(self, service: str, version: str = "", group: str = "") -> Sequence[Provider]:
        cached = self._providers.get((service, version, group))
        if cached is not None:
            return cached
        if service not in self._unsubscribe:
            self._watch(service)
        with self._lock:
            instances = self._instances.get(service, [])
            found = tuple(
                Provider(i.address, i.weight, i.metadata, i.start_time)
                for i in instances
                if i.group == group and (i.version == version or version in ("", "*"))
            )
            self._providers[(service, version, group)] = found
        return found

    def instances(self, service: str) -> list[ServiceInstance]:
        """The instances this consumer currently calls (after the guards)."""
        if service not in self._unsubscribe:
            self._watch(service)
        with self._lock:
            return list(self._instances.get(service, []))

    def subscribe(self, service: str, listener: Listener) -> Callable[[], None]:
        self._listeners.setdefault(service, []).append(listener)
        if service not in self._unsubscribe:
            self._watch(service)
        return lambda: self._listeners.get(service, []).remove(listener)

    def _watch(self, service: str) -> None:
        with self._lock:
            if service in self._unsubscribe:
                return
            self._unsubscribe[service] = lambda: None  # the first push arrives during subscribe
            cached = self._read_cache(service)
            if cached:
                self._instances[service] = cached
        self._unsubscribe[service] = self._registry.subscribe(
            service, lambda instances: self._pushed(service, instances)
        )

    # -- pushes and the empty-push guard -----------------------------------
    def _pushed(self, service: str, instances: list[ServiceInstance]) -> None:
        with self._lock:
            current = self._instances.get(service, [])
            if not instances and current:
                log.warning(
                    "registry pushed an empty list for %s; checking its %d providers first",
                    service,
                    len(current),
                )
                self._held.add(service)
                self._start_guard()
                self._wake.set()
                return
            self._held.discard(service)
        self._apply(service, list(instances))

    def _apply(self, service: str, instances: list[ServiceInstance]) -> None:
        with self._lock:
            self._instances[service] = instances
            for key in [k for k in self._providers if k[0] == service]:
                del self._providers[key]
        self._write_cache(service, instances)
        for listener in list(self._listeners.get(service, ())):
            deliver(listener, self.providers(service), service)

    def _start_guard(self) -> None:
        if self._guard is None:
            self._guard = threading.Thread(
                target=self._guard_loop, name="callscope-registry-guard", daemon=True
            )
            self._guard.start()

    def _guard_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._probe_interval)
            self._wake.clear()
            with self._lock:
                held = {s: list(self._instances.get(s, [])) for s in self._held}
            for service, instances in held.items():
                alive = [i for i in instances if reachable(i.address, self._probe_timeout)]
                with self._lock:
                    if service not in self._held:
                        continue  # the registry pushed a real list meanwhile
                    if not alive:
                        self._held.discard(service)
                if len(alive) != len(instances):
                    log.info("%s: %d of %d held providers still answer", service,
                             len(alive), len(instances))  # fmt: skip
                    self._apply(service, alive)

    # -- the disk cache -------------------------------------------------------
    def _cache_file(self, service: str) -> Path | None:
        if self._cache_dir is None:
            return None
        return self._cache_dir / f"{service.replace('/', '_')}.json"

    def _read_cache(self, service: str) -> list[ServiceInstance]:
        path = self._cache_file(service)
        if path is None or not path.is_file():
            return []
        try:
            items = json.loads(path.read_text())
            found = [ServiceInstance.from_dict(i) for i in items]
        except (OSError, ValueError, Exception):
            log.warning("ignoring an unreadable provider cache %s", path, exc_info=True)
            return []
        log.info("loaded %d cached providers of %s from %s", len(found), service, path)
        return found

    def _write_cache(self, service: str, instances: list[ServiceInstance]) -> None:
        path = self._cache_file(service)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps([i.to_dict() for i in instances]))
            os.replace(tmp, path)
        except OSError:
            log.warning("cannot write the provider cache %s", path, exc_info=True)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        for unsubscribe in self._unsubscribe.values():
            unsubscribe()
        self._unsubscribe.clear()
