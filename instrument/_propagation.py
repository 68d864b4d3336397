"""W3C Trace Context and Baggage carried in RPC call attachments.

The attachment keys are the HTTP header names (``traceparent``, ``tracestate``,
``baggage``), so a gateway can copy headers to attachments and back unchanged.
``callscope-caller`` tells a provider the calling service's name, which becomes
its span's ``peer_service``; it is not forwarded further.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from opentelemetry import context as otel_context

from ._baggage import ReceivedBaggage, decode_baggage, encode_baggage
from ._context import BAGGAGE_KEY, Context

__all__ = [
    "BAGGAGE",
    "CALLER",
    "MAX_TRACESTATE",
    "RECEIVED_BAGGAGE_KEY",
    "SAMPLED_LAST_DIGITS",
    "TRACEPARENT",
    "TRACESTATE",
    "ZERO_SPAN_ID",
    "ZERO_TRACE_ID",
    "RemoteParent",
    "format_traceparent",
    "match_traceparent_00",
    "parse_traceparent",
    "split_traceparent",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"
CALLER = "callscope-caller"

MAX_TRACESTATE = 512  # W3C: 32 members; a longer header is dropped, not the call
# the baggage a call received, beside the values its handler sees (``_baggage``)
RECEIVED_BAGGAGE_KEY = otel_context.create_key("callscope-received-baggage")
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?\Z"
).match
match_traceparent_00 = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z").match
SAMPLED_LAST_DIGITS = frozenset("13579bdf")  # a flags byte with bit 0 set ends in one
ZERO_TRACE_ID = "0" * 32
ZERO_SPAN_ID = "0" * 16


class RemoteParent(NamedTuple):
    """The parent span context read from a ``traceparent`` (and ``tracestate``)."""

    trace_id: int
    span_id: int
    sampled: bool
    trace_state: str = ""


def format_traceparent(trace_id: int, span_id: int, sampled: bool) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def parse_traceparent(value: Any, trace_state: Any = None) -> RemoteParent | None:
    """The parent in a ``traceparent`` value, or ``None`` when it is absent or malformed.

    Follows W3C Trace Context level 1: version ``ff`` and all-zero ids are
    invalid; a later version may append fields after the flags.
    """
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT(value)
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    state = (
        trace_state if isinstance(trace_state, str) and len(trace_state) <= MAX_TRACESTATE else ""
    )
    return RemoteParent(trace_id, span_id, bool(int(flags_hex, 16) & 1), state)


def split_traceparent(value: Any) -> tuple[str, str, bool] | None:
    """``(trace id hex, parent span id hex, sampled)`` from a ``traceparent``, or ``None``.

    The hot path of a provider: version ``00`` is checked and sliced without
    converting the ids; other versions go through :func:`parse_traceparent`.
    """
    if type(value) is str and len(value) == 55 and match_traceparent_00(value):
        trace_hex = value[3:35]
        parent_hex = value[36:52]
        if trace_hex == ZERO_TRACE_ID or parent_hex == ZERO_SPAN_ID:
            return None
        return trace_hex, parent_hex, value[54] in SAMPLED_LAST_DIGITS
    parent = parse_traceparent(value)
    if parent is None:
        return None
    return f"{parent.trace_id:032x}", f"{parent.span_id:016x}", parent.sampled


def inject_baggage(attachments: dict[str, Any], context: Context) -> None:
    """Put ``context``'s baggage in ``attachments`` (only when there is some): the header
    this service received when its handler changed none of it (see :mod:`._baggage`)."""
    values = context.get(BAGGAGE_KEY)
    if isinstance(values, dict) and values:  # what OpenTelemetry's baggage API keeps there
        received = context.get(RECEIVED_BAGGAGE_KEY)
        header = encode_baggage(values, received if type(received) is ReceivedBaggage else None)
        if header:
            attachments[BAGGAGE] = header


def extract_baggage(attachments: dict[str, Any], context: Context) -> Context:
    """``context`` plus the baggage an incoming call carried, W3C-decoded."""
    value = attachments.get(BAGGAGE)
    if not isinstance(value, str) or not value:
        return context
    received = decode_baggage(value)
    if received is None:
        return context
    return Context({**context, BAGGAGE_KEY: received.values, RECEIVED_BAGGAGE_KEY: received})
