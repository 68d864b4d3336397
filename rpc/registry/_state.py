"""The registry's data and its change log, shared by the memory backend and the server.

Every mutation bumps one ``revision`` and appends ``(revision, kind, name)`` to a
bounded log, so a watcher that knows its last revision learns exactly what changed
(or, when it fell off the log, that it must reload everything it watches).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from .._errors import BadRequestError, NotFoundError
from ._errors import ConflictError
from ._model import (
    MAX_DOCUMENT_BYTES,
    ConfigDocument,
    Consumer,
    ServiceInstance,
    check_key,
    validate_instance,
)

SERVICES = "services"
CONFIG = "config"
Change = tuple[int, str, str]  # revision, SERVICES | CONFIG, service name or config key


def validate_document(key: str, value: Any) -> None:
    """Refuse what no consumer could use: non-JSON values, oversize or malformed rules."""
    check_key(key)
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"config {key!r}: value is not JSON: {exc}") from None
    if size > MAX_DOCUMENT_BYTES:
        raise BadRequestError(f"config {key!r}: {size} bytes exceeds {MAX_DOCUMENT_BYTES}")
    if _is_weights(key) and not (
        isinstance(value, dict)
        and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()
        )
    ):
        raise BadRequestError(
            f"config {key!r}: weights must map addresses to non-negative integers"
        )


def _is_weights(key: str) -> bool:
    return key.startswith("governance/") and key.endswith("/weights")


class RegistryState:
    """Instances, consumers and documents, each tagged with the session that owns it."""

    def __init__(self, log_size: int = 10_000) -> None:
        self.lock = threading.RLock()
        self.instances: dict[str, dict[str, tuple[ServiceInstance, str]]] = {}
        self.consumers: dict[str, dict[str, tuple[Consumer, str]]] = {}
        self.config: dict[str, ConfigDocument] = {}
        self.revision = 0
        self._log: deque[Change] = deque(maxlen=log_size)

    # -- reads --------------------------------------------------------------
    def lookup(self, service: str) -> list[ServiceInstance]:
        with self.lock:
            return [inst for inst, _ in self.instances.get(service, {}).values()]

    def services(self) -> list[str]:
        with self.lock:
            return sorted(name for name, found in self.instances.items() if found)

    def list_consumers(self, service: str | None = None) -> list[Consumer]:
        with self.lock:
            names = [service] if service is not None else sorted(self.consumers)
            return [c for n in names for c, _ in self.consumers.get(n, {}).values()]

    def get_config(self, key: str) -> ConfigDocument | None:
        return self.config.get(check_key(key))

    def list_config(self, prefix: str = "") -> list[ConfigDocument]:
        with self.lock:
            return [doc for key, doc in sorted(self.config.items()) if key.startswith(prefix)]

    def changes_since(self, revision: int) -> tuple[set[str], set[str]] | None:
        """Services and keys changed after ``revision``; ``None`` if the log no longer reaches."""
        with self.lock:
            if revision > self.revision:
                return None  # a revision from another life of the registry
            if revision == self.revision:
                return set(), set()
            if not self._log or self._log[0][0] > revision + 1:
                return None
            services: set[str] = set()
            keys: set[str] = set()
            for rev, kind, name in reversed(self._log):
                if rev <= revision:
                    break
                (services if kind == SERVICES else keys).add(name)
            return services, keys

    # -- writes -------------------------------------------------------------
    def _changed(self, kind: str, name: str) -> int:
        self.revision += 1
        self._log.append((self.revision, kind, name))
        return self.revision

    def put_instance(self, instance: ServiceInstance, owner: str = "") -> bool:
        validate_instance(instance)
        with self.lock:
            found = self.instances.setdefault(instance.service, {})
            old = found.get(instance.id)
            found[instance.id] = (instance, owner)
            if old is not None and old[0].to_dict() == instance.to_dict():
                return False
            self._changed(SERVICES, instance.service)
            return True

    def remove_instance(self, service: str, instance_id: str) -> bool:
        with self.lock:
            if self.instances.get(service, {}).pop(instance_id, None) is None:
                return False
            self._changed(SERVICES, service)
            return True

    def put_consumer(self, consumer: Consumer, owner: str = "") -> None:
        with self.lock:
            self.consumers.setdefault(consumer.service, {})[consumer.id] = (consumer, owner)

    def remove_consumer(self, service: str, consumer_id: str) -> None:
        with self.lock:
            self.consumers.get(service, {}).pop(consumer_id, None)

    def remove_owner(self, owner: str) -> set[str]:
        """Drop everything a dead session owned; returns the services that changed."""
        changed = set()
        with self.lock:
            for service, found in self.instances.items():
                for iid in [i for i, (_, o) in found.items() if o == owner]:
                    del found[iid]
                    changed.add(service)
            for found_c in self.consumers.values():
                for cid in [c for c, (_, o) in found_c.items() if o == owner]:
                    del found_c[cid]
            for service in sorted(changed):
                self._changed(SERVICES, service)
        return changed

    def put_config(self, key: str, value: Any, expected: int | None = None) -> ConfigDocument:
        """Write a document; ``expected`` 0 means "must not exist", n "must be at version n"."""
        validate_document(key, value)
        with self.lock:
            current = self.config.get(key)
            have = current.version if current else 0
            if expected is not None and expected != have:
                raise ConflictError(f"config {key!r} is at version {have}, not {expected}")
            doc = ConfigDocument(key, value, have + 1)
            self.config[key] = doc
            self._changed(CONFIG, key)
            return doc

    def delete_config(self, key: str, expected: int | None = None) -> None:
        check_key(key)
        with self.lock:
            current = self.config.get(key)
            if current is None:
                raise NotFoundError(f"no config {key!r}")
            if expected is not None and expected != current.version:
                raise ConflictError(
                    f"config {key!r} is at version {current.version}, not {expected}"
                )
            del self.config[key]
            self._changed(CONFIG, key)

    def load(
        self,
        revision: int,
        instances: Iterable[tuple[ServiceInstance, str]],
        consumers: Iterable[tuple[Consumer, str]],
        config: Iterable[ConfigDocument],
    ) -> None:
        """Restore persisted data after a restart (the change log starts empty)."""
        with self.lock:
            self.revision = revision
            for inst, owner in instances:
                self.instances.setdefault(inst.service, {})[inst.id] = (inst, owner)
            for consumer, owner in consumers:
                self.consumers.setdefault(consumer.service, {})[consumer.id] = (consumer, owner)
            for doc in config:
                self.config[doc.key] = doc
