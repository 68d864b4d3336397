"""What the registry stores: provider instances, consumers and configuration documents.

A leaf module: plain data with a wire form (``to_dict``/``from_dict``) shared by
every backend, so an instance registered over ZooKeeper and one registered on the
embedded server look the same to a consumer.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import BadRequestError
from ._validate import check_address, check_int, check_metadata, check_number, check_text

_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
MAX_KEY_LENGTH = 512
MAX_DOCUMENT_BYTES = 1 << 20
MAX_WEIGHT = 1_000_000
MAX_PID = (1 << 32) - 1
START_TIME_SKEW = 86_400.0
"""How far in the future (seconds, by the checker's clock) a ``start_time`` may lie."""


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One provider of one service; ``address`` is ``host:port``.

    ``metadata`` carries placement (host, zone, rack, room) for routing; ``pid`` and
    ``start_time`` let a balancer warm a fresh instance up gradually.
    """

    service: str
    address: str
    version: str = ""
    group: str = ""
    weight: int = 100
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    pid: int = field(default_factory=os.getpid, compare=False)
    start_time: float = field(default_factory=time.time, compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.service, self.version, self.group, self.address)

    @property
    def id(self) -> str:
        """A stable name for this registration: ``address#version#group``."""
        return f"{self.address}#{self.version}#{self.group}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "address": self.address,
            "version": self.version,
            "group": self.group,
            "weight": self.weight,
            "metadata": dict(self.metadata),
            "pid": self.pid,
            "start_time": self.start_time,
        }

    @staticmethod
    def from_dict(data: Any) -> ServiceInstance:
        """Rebuild (and validate) an instance from its wire form; no value is coerced."""
        if not isinstance(data, dict):
            raise BadRequestError("an instance must be a map")
        if "service" not in data or "address" not in data:
            raise BadRequestError("an instance needs a service and an address")
        instance = ServiceInstance(
            service=data["service"],
            address=data["address"],
            version=data.get("version", ""),
            group=data.get("group", ""),
            weight=data.get("weight", 100),
            metadata=data.get("metadata") or {},
            pid=data.get("pid", 0),
            start_time=data.get("start_time", 0.0),
        )
        validate_instance(instance)
        return instance


def validate_instance(instance: ServiceInstance) -> None:
    """Every field of the right type and within its limit (see :mod:`._validate`)."""
    check_name(instance.service, "service")
    check_address(instance.address)
    check_text(instance.version, "version")
    check_text(instance.group, "group")
    if "#" in instance.version or "#" in instance.group:
        raise BadRequestError("version and group may not contain '#'")
    check_int(instance.weight, "weight", 0, MAX_WEIGHT)
    check_int(instance.pid, "pid", 0, MAX_PID)
    check_number(instance.start_time, "start_time", 0.0, time.time() + START_TIME_SKEW)
    check_metadata(instance.metadata)


@dataclass(frozen=True, slots=True)
class Consumer:
    """One subscriber of a service, listed for operators (who calls what)."""

    service: str
    id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "id": self.id, "metadata": dict(self.metadata)}

    @staticmethod
    def from_dict(data: Any) -> Consumer:
        if not isinstance(data, dict) or "service" not in data or "id" not in data:
            raise BadRequestError("a consumer must be a map with service and id")
        consumer = Consumer(data["service"], data["id"], data.get("metadata") or {})
        validate_consumer(consumer)
        return consumer


def validate_consumer(consumer: Consumer) -> None:
    check_name(consumer.service, "service")
    check_text(consumer.id, "consumer id", empty=False)
    check_metadata(consumer.metadata, "consumer metadata")


@dataclass(frozen=True, slots=True)
class ConfigDocument:
    """A configuration document; ``version`` starts at 1 and grows on every write."""

    key: str
    value: Any
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "version": self.version}

    @staticmethod
    def from_dict(data: Any) -> ConfigDocument:
        return ConfigDocument(str(data["key"]), data["value"], int(data["version"]))


def check_name(name: str, what: str) -> None:
    """A service name: one key segment (letters, digits, ``_.:@-``)."""
    if not isinstance(name, str) or not _KEY_SEGMENT.match(name):
        raise BadRequestError(f"bad {what} name {name!r}: use letters, digits and _.:@-")


def check_key(key: str) -> str:
    """A config key is ``scope/name`` segments, e.g. ``governance/orders.Svc/weights``."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequestError(f"bad config key {key!r}: 1..{MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _KEY_SEGMENT.match(segment) or segment in (".", ".."):
            raise BadRequestError(
                f"bad config key {key!r}: segments of letters, digits and _.:@- joined by /"
            )
    return key


def instance_namespace(service: str) -> str:
    """The permission namespace of a service's registrations."""
    return f"services/{service}"


def config_namespace(key: str) -> str:
    return f"config/{key}"
