"""W3C Baggage (https://www.w3.org/TR/baggage/): the ``baggage`` header, decoded and encoded.

Why not OpenTelemetry's ``W3CBaggagePropagator``: it form-encodes (``quote_plus`` /
``unquote_plus``), so ``a+b`` arrives as ``a b``, ``DF%2028`` leaves as ``DF+28`` and a
member's properties are percent-encoded into its value. Here values are percent-decoded
as W3C says (``+`` is a ``+``; bad UTF-8 becomes U+FFFD), and what a service received is
remembered so that a call it makes forwards the members it did not change exactly as
they came, properties included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import quote, unquote

__all__ = [
    "MAX_BYTES",
    "MAX_MEMBERS",
    "ReceivedBaggage",
    "decode_baggage",
    "encode_baggage",
]

log = logging.getLogger("callscope.instrument")

# W3C limits: a platform must propagate at least 64 members and 8192 bytes; 180 members
# and 4096 bytes per member are OpenTelemetry's limits, which peers will hold us to.
MAX_BYTES = 8192
MAX_MEMBERS = 180
MAX_MEMBER_BYTES = 4096

_OWS = " \t"
_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match  # an RFC 7230 token
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*\Z").match  # baggage-octets
# what a value may keep unencoded: the baggage-octets but "%", which starts an escape
_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


class ReceivedBaggage(NamedTuple):
    """A ``baggage`` header as an incoming call carried it, and what it decoded to.

    ``values`` is the very dict put in the handler's context: while the context still
    holds it, the handler changed nothing and ``header`` is forwarded as it came.
    """

    header: str
    values: dict[str, str]
    members: dict[str, tuple[str, str]]  # key -> (decoded value, the member as received)


def _member(text: str) -> tuple[str, str] | None:
    """``(key, decoded value)`` of one list-member, or ``None`` when it is malformed."""
    first, *properties = text.split(";")
    key, eq, value = first.partition("=")
    key, value = key.strip(_OWS), value.strip(_OWS)
    if not eq or not _KEY(key) or not _VALUE(value):
        return None
    for prop in properties:  # key OWS "=" OWS value, or a bare key
        name, eq, prop_value = prop.partition("=")
        if not _KEY(name.strip(_OWS)) or (eq and not _VALUE(prop_value.strip(_OWS))):
            return None
    return key, unquote(value, errors="replace")


def decode_baggage(header: str) -> ReceivedBaggage | None:
    """The members of a ``baggage`` header; ``None`` when it holds none or is too long.

    A malformed member is skipped (and logged), not the whole header; beyond
    :data:`MAX_MEMBERS` members the rest are dropped. A key given twice keeps its last value.
    """
    if len(header.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        log.warning("callscope: dropped a baggage header of more than %d bytes", MAX_BYTES)
        return None
    values: dict[str, str] = {}
    members: dict[str, tuple[str, str]] = {}
    for count, raw in enumerate(header.split(",")):
        text = raw.strip(_OWS)
        if not text:
            continue
        if count >= MAX_MEMBERS:
            log.warning("callscope: baggage beyond %d members dropped", MAX_MEMBERS)
            break
        member = _member(text) if len(text) <= MAX_MEMBER_BYTES else None
        if member is None:
            log.warning("callscope: dropped a malformed baggage member %.60r", text)
            continue
        key, value = member
        values[key] = value
        members[key] = (value, text)
    if not values:
        return None
    return ReceivedBaggage(header, values, members)


def _quote(value: object) -> str:
    """A value percent-encoded (UTF-8; a lone surrogate arrives as U+FFFD)."""
    text = value if isinstance(value, str) else str(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe=_SAFE)


def encode_baggage(values: Mapping[str, object], received: ReceivedBaggage | None = None) -> str:
    """The ``baggage`` header for ``values`` (the context's baggage).

    Unchanged since ``received``: that header as it came. Otherwise a member whose value
    is the one received is forwarded as received; a new or changed one is encoded
    (W3C percent-encoding). A key that is not a token, or members past the limits, are
    dropped and logged.
    """
    if received is not None and values is received.values:
        return received.header
    parts: list[str] = []
    size = 0
    for key, value in values.items():
        kept = received.members.get(key) if received is not None else None
        if kept is not None and kept[0] == value:
            member = kept[1]
        elif isinstance(key, str) and _KEY(key):
            member = f"{key}={_quote(value)}"
        else:
            log.warning("callscope: baggage key %.60r is not a W3C token; not sent", key)
            continue
        size += len(member) + (1 if parts else 0)
        if len(parts) >= MAX_MEMBERS or len(member) > MAX_MEMBER_BYTES or size > MAX_BYTES:
            log.warning("callscope: baggage past the W3C limits; %r and later not sent", key)
            break
        parts.append(member)
    return ",".join(parts)
