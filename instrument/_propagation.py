"""W3C Trace Context and Baggage carried in RPC call attachments.

The attachment keys are the HTTP header names (``traceparent``, ``tracestate``,
``baggage``), so a gateway can copy headers to attachments and back unchanged.
``callscope-caller`` tells a provider the calling service's name, which becomes
its span's ``peer_service``; it is not forwarded further.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

__all__ = [
    "BAGGAGE",
    "CALLER",
    "TRACEPARENT",
    "TRACESTATE",
    "RemoteParent",
    "format_traceparent",
    "parse_traceparent",
]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"
CALLER = "callscope-caller"

_MAX_TRACESTATE = 512  # W3C: 32 members; a longer header is dropped, not the call
_baggage_propagator = W3CBaggagePropagator()
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[ -~]*)?\Z"
).match


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
        trace_state if isinstance(trace_state, str) and len(trace_state) <= _MAX_TRACESTATE else ""
    )
    return RemoteParent(trace_id, span_id, bool(int(flags_hex, 16) & 1), state)


def inject_baggage(attachments: dict[str, Any]) -> None:
    """Copy the current context's baggage into ``attachments`` (only when there is some)."""
    if baggage.get_all():
        carrier: dict[str, str] = {}
        _baggage_propagator.inject(carrier)
        if BAGGAGE in carrier:
            attachments[BAGGAGE] = carrier[BAGGAGE]


def extract_baggage(
    attachments: dict[str, Any], context: otel_context.Context
) -> otel_context.Context:
    """``context`` plus the baggage an incoming call carried."""
    value = attachments.get(BAGGAGE)
    if not isinstance(value, str) or not value:
        return context
    return _baggage_propagator.extract({BAGGAGE: value}, context)
