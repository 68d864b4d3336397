"""What the registry accepts from a caller: checked at its edge, before anything changes.

Every check raises :class:`~rpc.BadRequestError` naming the field and the limit, so
a wrong type or an absurd number is the caller's ``BAD_REQUEST``, never an
``INTERNAL`` or a ``CONFLICT`` later on. The limits bound what one registration can
cost everyone else: a service's whole instance list (``MAX_INSTANCES_PER_SERVICE``
instances of at most ``MAX_METADATA_BYTES`` and ``MAX_METADATA_KEYS`` entries of
metadata each: under 9 MB and 150,000 msgpack objects) always fits in one RPC frame,
so no service's data can break another's lookup or watch.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .._errors import BadRequestError

MAX_METADATA_BYTES = 8192
"""A registration's metadata, encoded as compact UTF-8 JSON."""
MAX_METADATA_DEPTH = 4
"""Nesting of maps and lists in metadata (a flat map is depth 1)."""
MAX_METADATA_KEYS = 64
"""Entries in metadata (map keys and list items), counted over every nesting level."""
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_STRING_LENGTH = 1024
MAX_TEXT_LENGTH = 256
"""Versions, groups, consumer ids, session ids and owner labels."""
MAX_INSTANCES_PER_SERVICE = 1000
"""Instances one service may list (the default; ``RegistryServer`` takes another)."""

_INT64 = 1 << 63
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_text(value: Any, what: str, *, empty: bool = True, limit: int = MAX_TEXT_LENGTH) -> str:
    """A printable string of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise BadRequestError(f"{what} must be a string, not {type(value).__name__}")
    if not value and not empty:
        raise BadRequestError(f"{what} may not be empty")
    if len(value) > limit or not value.isprintable():
        raise BadRequestError(f"{what} must be at most {limit} printable characters")
    return value


def check_number(value: Any, what: str, low: float, high: float) -> float:
    """A finite real number in ``[low, high]`` (``bool`` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequestError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        raise BadRequestError(f"{what} must be a finite number in [{low:g}, {high:g}], not {value}")
    return float(value)


def check_int(value: Any, what: str, low: int = 0, high: int = _INT64 - 1) -> int:
    """An integer (not a float, not a ``bool``) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequestError(f"{what} must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise BadRequestError(f"{what} must be in [{low}, {high}], not {value}")
    return value


def check_address(address: Any) -> str:
    """``host:port`` with a DNS name or IPv4 host, or ``[v6]:port``; port 1..65535 in ASCII."""
    check_text(address, "address", empty=False, limit=261)
    host, sep, port = address.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequestError(f"bad address {address!r}: expected host:port, port 1..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise BadRequestError(f"bad address {address!r}: not an IPv6 literal") from None
        return address
    labels = host.rstrip(".").split(".")
    if not host.isascii() or len(host) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        raise BadRequestError(f"bad address {address!r}: the host is not a DNS name or IP address")
    return address


def check_metadata(metadata: Any, what: str = "metadata") -> dict[str, Any]:
    """JSON-only data within the size, depth, key and length limits above."""
    if not isinstance(metadata, Mapping):
        raise BadRequestError(f"{what} must be a map, not {type(metadata).__name__}")
    entries = _walk(metadata, what, 1)
    if entries > MAX_METADATA_KEYS:
        raise BadRequestError(
            f"{what} has {entries} entries (keys and list items); the limit is {MAX_METADATA_KEYS}"
        )
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise BadRequestError(
            f"{what} is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES} bytes"
        )
    return dict(metadata)


def _walk(value: Any, what: str, depth: int) -> int:
    """Check one value; returns the entries (map keys, list items) it holds, stopping early
    past the limit."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise BadRequestError(f"{what}: integer {value} does not fit in 64 bits")
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadRequestError(f"{what}: numbers must be finite, not {value}")
        return 0
    if isinstance(value, str):
        if len(value) > MAX_METADATA_STRING_LENGTH:
            raise BadRequestError(
                f"{what}: a string of {len(value)} characters; "
                f"the limit is {MAX_METADATA_STRING_LENGTH}"
            )
        return 0
    if depth > MAX_METADATA_DEPTH:
        raise BadRequestError(f"{what} nests deeper than {MAX_METADATA_DEPTH} levels")
    entries = len(value) if isinstance(value, list | tuple | Mapping) else 0
    if entries > MAX_METADATA_KEYS:
        return entries  # check_metadata refuses it, without walking a huge container
    if isinstance(value, list | tuple):
        for item in value:
            entries += _walk(item, what, depth + 1)
            if entries > MAX_METADATA_KEYS:
                break
        return entries
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key or len(key) > MAX_METADATA_KEY_LENGTH:
                raise BadRequestError(
                    f"{what}: keys must be strings of 1..{MAX_METADATA_KEY_LENGTH} characters, "
                    f"not {key!r:.80}"
                )
            entries += _walk(item, what, depth + 1)
            if entries > MAX_METADATA_KEYS:
                break
        return entries
    raise BadRequestError(f"{what}: {type(value).__name__} values are not JSON")
