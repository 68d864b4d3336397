"""Field checks shared by the span and the KPI record: each names the field it refuses.

A record that breaks the contract raises :class:`ValidationError` with the dotted
path of the offending field, so a collector can send it to the dead-letter topic
with a reason a person can act on.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["SCHEMA_VERSION", "ValidationError"]

SCHEMA_VERSION = 1
"""The version of this contract; readers refuse a newer one."""

HEX32 = re.compile(r"[0-9a-f]{32}\Z")
HEX16 = re.compile(r"[0-9a-f]{16}\Z")
ZERO32 = "0" * 32
ZERO16 = "0" * 16


class ValidationError(ValueError):
    """A record breaks the contract; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(what, f"must be a JSON object, not {type(data).__name__}")
    return data


def schema(data: dict[str, Any]) -> int:
    version = data.get("schema")
    if type(version) is not int:
        raise ValidationError("schema", "missing or not an integer")
    if not 1 <= version <= SCHEMA_VERSION:
        raise ValidationError("schema", f"version {version} is not supported (<= {SCHEMA_VERSION})")
    return version


def text(data: dict[str, Any], name: str, *, required: bool = True, prefix: str = "") -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ValidationError(prefix + name, "must be a non-empty string")
    return value


def count(data: dict[str, Any], name: str, *, prefix: str = "", default: int | None = None) -> int:
    value = data.get(name, default)
    if type(value) is not int or value < 0:
        raise ValidationError(prefix + name, "must be a non-negative integer")
    return value


def number(data: dict[str, Any], name: str, *, prefix: str = "") -> float:
    value = data.get(name, 0.0)
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValidationError(prefix + name, "must be a finite non-negative number")
    return float(value)


def choice(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value  # type: ignore[return-value]


def hex_id(
    data: dict[str, Any], name: str, pattern: re.Pattern[str], zero: str, *, required: bool
) -> str:
    value = data.get(name)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not pattern.match(value) or value == zero:
        raise ValidationError(name, f"must be {len(zero)} lowercase hex digits, not all zero")
    return value


def attributes(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(name, "must be an object with string keys")
    return value


def loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("$", f"not JSON: {exc}") from None


def dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()
