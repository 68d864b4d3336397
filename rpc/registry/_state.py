"""The registry's data and its change log, shared by the memory backend and the server.

Every mutation bumps one ``revision`` and appends ``(revision, kind, name)`` to a
bounded log, so a watcher that knows its last revision learns exactly what changed
(or, when it fell off the log, that it must reload everything it watches).

Writes are checked first, then handed to ``persist`` (the server's SQLite write,
called with the revision the change will have), and only then applied in memory:
a refused or failed write changes nothing, so memory and disk never diverge.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .._errors import BadRequestError, NotFoundError, ResourceExhaustedError
from ..config import validate_governance
from ._errors import ConflictError
from ._model import (
    MAX_DOCUMENT_BYTES,
    MAX_KEY_LENGTH,
    ConfigDocument,
    Consumer,
    ServiceInstance,
    check_key,
    check_name,
    validate_consumer,
    validate_instance,
)
from ._validate import MAX_INSTANCES_PER_SERVICE, check_int, check_text

SERVICES = "services"
CONFIG = "config"
Change = tuple[int, str, str]  # revision, SERVICES | CONFIG, service name or config key
Persist = Callable[[int], None]  # writes a change durably, given its revision; may raise
Held = tuple[str, str, str]  # SERVICES | CONSUMERS, service, instance or consumer id
CONSUMERS = "consumers"


def _nothing(revision: int) -> None:
    """The memory backend persists nothing."""


def validate_document(key: str, value: Any) -> None:
    """Refuse what no consumer could use: non-JSON values, oversize or malformed rules."""
    check_key(key)
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        detail = f"value is not JSON: {exc}"
        try:  # a rule's own check names the field (a NaN qps...)
            validate_governance(key, value)
        except BadRequestError as bad:
            detail += f" ({bad.message.removeprefix(f'config {key!r}: ')})"
        raise BadRequestError(f"config {key!r}: {detail}") from None
    if size > MAX_DOCUMENT_BYTES:
        raise BadRequestError(f"config {key!r}: {size} bytes exceeds {MAX_DOCUMENT_BYTES}")
    validate_governance(key, value)  # weights, routing rules, settings: as consumers read them


class RegistryState:
    """Instances, consumers and documents, each tagged with the session that owns it."""

    def __init__(
        self, log_size: int = 10_000, max_instances_per_service: int = MAX_INSTANCES_PER_SERVICE
    ) -> None:
        self.lock = threading.RLock()
        self.instances: dict[str, dict[str, tuple[ServiceInstance, str]]] = {}
        self.consumers: dict[str, dict[str, tuple[Consumer, str]]] = {}
        self.config: dict[str, ConfigDocument] = {}
        self.revision = 0
        self.max_instances_per_service = max_instances_per_service
        self._log: deque[Change] = deque(maxlen=log_size)
        self._held: dict[str, set[Held]] = {}  # owner -> what it registered

    # -- reads --------------------------------------------------------------
    def lookup(self, service: str) -> list[ServiceInstance]:
        check_name(service, "service")
        with self.lock:
            return [inst for inst, _ in self.instances.get(service, {}).values()]

    def services(self) -> list[str]:
        with self.lock:
            return sorted(name for name, found in self.instances.items() if found)

    def list_consumers(self, service: str | None = None) -> list[Consumer]:
        if service is not None:
            check_name(service, "service")
        with self.lock:
            names = [service] if service is not None else sorted(self.consumers)
            return [c for n in names for c, _ in self.consumers.get(n, {}).values()]

    def instance_owner(self, service: str, instance_id: str) -> str | None:
        with self.lock:
            found = self.instances.get(service, {}).get(instance_id)
            return found[1] if found else None

    def consumer_owner(self, service: str, consumer_id: str) -> str | None:
        with self.lock:
            found = self.consumers.get(service, {}).get(consumer_id)
            return found[1] if found else None

    def held(self, owner: str) -> int:
        """How many instances and consumers ``owner`` (a session) registered."""
        with self.lock:
            return len(self._held.get(owner, ()))

    def get_config(self, key: str) -> ConfigDocument | None:
        return self.config.get(check_key(key))

    def list_config(self, prefix: str = "") -> list[ConfigDocument]:
        check_text(prefix, "prefix", limit=MAX_KEY_LENGTH)
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

    def _hold(self, owner: str, what: Held, former: str | None = None) -> None:
        if former is not None:
            self._release(former, what)
        self._held.setdefault(owner, set()).add(what)

    def _release(self, owner: str, what: Held) -> None:
        held = self._held.get(owner)
        if held is not None:
            held.discard(what)
            if not held:
                del self._held[owner]

    def put_instance(
        self, instance: ServiceInstance, owner: str = "", persist: Persist = _nothing
    ) -> bool:
        """Add or replace; returns whether subscribers must hear of it."""
        validate_instance(instance)
        with self.lock:
            found = self.instances.get(instance.service, {})
            old = found.get(instance.id)
            if old is None and len(found) >= self.max_instances_per_service:
                raise ResourceExhaustedError(
                    f"service {instance.service!r} lists {self.max_instances_per_service} "
                    "instances already (the per-service limit)"
                )
            changed = old is None or old[0].to_dict() != instance.to_dict()
            if not changed and old is not None and old[1] == owner:
                return False
            persist(self.revision + 1 if changed else self.revision)
            self.instances.setdefault(instance.service, {})[instance.id] = (instance, owner)
            what = (SERVICES, instance.service, instance.id)
            self._hold(owner, what, old[1] if old else None)
            if changed:
                self._changed(SERVICES, instance.service)
            return changed

    def remove_instance(self, service: str, instance_id: str, persist: Persist = _nothing) -> bool:
        with self.lock:
            old = self.instances.get(service, {}).get(instance_id)
            if old is None:
                return False
            persist(self.revision + 1)
            del self.instances[service][instance_id]
            self._release(old[1], (SERVICES, service, instance_id))
            self._changed(SERVICES, service)
            return True

    def put_consumer(
        self, consumer: Consumer, owner: str = "", persist: Persist = _nothing
    ) -> None:
        validate_consumer(consumer)
        with self.lock:
            old = self.consumers.get(consumer.service, {}).get(consumer.id)
            persist(self.revision)
            self.consumers.setdefault(consumer.service, {})[consumer.id] = (consumer, owner)
            self._hold(owner, (CONSUMERS, consumer.service, consumer.id), old[1] if old else None)

    def remove_consumer(self, service: str, consumer_id: str, persist: Persist = _nothing) -> None:
        with self.lock:
            old = self.consumers.get(service, {}).get(consumer_id)
            if old is None:
                return
            persist(self.revision)
            del self.consumers[service][consumer_id]
            self._release(old[1], (CONSUMERS, service, consumer_id))

    def remove_owner(self, owner: str, persist: Persist = _nothing) -> set[str]:
        """Drop everything a dead session owned; returns the services that changed."""
        with self.lock:
            held = self._held.get(owner, set())
            changed = {service for kind, service, _ in held if kind == SERVICES}
            persist(self.revision + len(changed))
            for kind, service, name in held:
                table = self.instances if kind == SERVICES else self.consumers
                table.get(service, {}).pop(name, None)
            self._held.pop(owner, None)
            for service in sorted(changed):
                self._changed(SERVICES, service)
        return changed

    def put_config(
        self,
        key: str,
        value: Any,
        expected: int | None = None,
        persist: Callable[[ConfigDocument, int], None] = lambda doc, revision: None,
    ) -> ConfigDocument:
        """Write a document; ``expected`` 0 means "must not exist", n "must be at version n"."""
        validate_document(key, value)
        if expected is not None:
            check_int(expected, "expected version")
        with self.lock:
            current = self.config.get(key)
            have = current.version if current else 0
            if expected is not None and expected != have:
                raise ConflictError(f"config {key!r} is at version {have}, not {expected}")
            doc = ConfigDocument(key, value, have + 1)
            persist(doc, self.revision + 1)
            self.config[key] = doc
            self._changed(CONFIG, key)
            return doc

    def delete_config(
        self, key: str, expected: int | None = None, persist: Persist = _nothing
    ) -> None:
        check_key(key)
        if expected is not None:
            check_int(expected, "expected version")
        with self.lock:
            current = self.config.get(key)
            if current is None:
                raise NotFoundError(f"no config {key!r}")
            if expected is not None and expected != current.version:
                raise ConflictError(
                    f"config {key!r} is at version {current.version}, not {expected}"
                )
            persist(self.revision + 1)
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
                self._hold(owner, (SERVICES, inst.service, inst.id))
            for consumer, owner in consumers:
                self.consumers.setdefault(consumer.service, {})[consumer.id] = (consumer, owner)
                self._hold(owner, (CONSUMERS, consumer.service, consumer.id))
            for doc in config:
                self.config[doc.key] = doc
