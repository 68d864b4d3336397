"""What flows through the collector: messages from a source, decoded or rejected with a code.

Rejection codes are stable strings (DESIGN §5), carried to the dead-letter queue:

``NOT_JSON``            the value is not a JSON document
``UNSUPPORTED_SCHEMA``  ``schema`` is missing or newer than this collector knows
``INVALID_FIELD``       a field breaks the contract (``field`` names it)
``TOO_LARGE``           the message is over the collector's size limit
``UNKNOWN_TOPIC``       the message came from a topic the collector does not read
``OTLP_INVALID``        an OTLP span that cannot become a span record
``STORE_REJECTED``      the store refused the record for good (e.g. a mapping conflict)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from callscope_contract import (
    KPIS_TOPIC,
    SPANS_DLQ_TOPIC,
    SPANS_TOPIC,
    KpiSample,
    SpanRecord,
    ValidationError,
)

__all__ = [
    "KPIS_TOPIC",
    "SPANS_DLQ_TOPIC",
    "SPANS_TOPIC",
    "Message",
    "Rejection",
    "decode",
]

MAX_MESSAGE_BYTES = 1 << 20


@dataclass(slots=True)
class Rejection:
    code: str
    reason: str
    field: str = ""


@dataclass(slots=True)
class Message:
    """One record from a source; ``record`` or ``rejection`` is set for pre-decoded ones."""

    topic: str
    value: bytes
    key: bytes = b""
    origin: dict[str, object] = field(default_factory=dict)  # where it came from, for the DLQ
    record: SpanRecord | KpiSample | None = None
    rejection: Rejection | None = None


def rejection_for(error: ValidationError) -> Rejection:
    if error.field == "$":
        return Rejection("NOT_JSON", str(error), "")
    if error.field == "schema":
        return Rejection("UNSUPPORTED_SCHEMA", str(error), "schema")
    return Rejection("INVALID_FIELD", str(error), error.field)


def decode(message: Message) -> SpanRecord | KpiSample | Rejection:
    """The record a message carries, or why it cannot be stored."""
    if message.rejection is not None:
        return message.rejection
    if message.record is not None:
        return message.record
    if len(message.value) > MAX_MESSAGE_BYTES:
        return Rejection("TOO_LARGE", f"{len(message.value)} bytes > {MAX_MESSAGE_BYTES}")
    kind = _KINDS.get(message.topic)
    if kind is None:
        return Rejection("UNKNOWN_TOPIC", f"topic {message.topic!r} is neither spans nor KPIs")
    try:
        return kind.from_dict(orjson.loads(message.value))
    except orjson.JSONDecodeError as exc:
        return Rejection("NOT_JSON", f"$: not JSON: {exc}")
    except ValidationError as error:
        return rejection_for(error)


# orjson parses ~1.5x faster than json here (decoding was ~40% of the collector's time);
# the checks stay the contract's own (``from_dict`` of callscope_contract).
_KINDS: dict[str, type[SpanRecord] | type[KpiSample]] = {
    SPANS_TOPIC: SpanRecord,
    KPIS_TOPIC: KpiSample,
}
