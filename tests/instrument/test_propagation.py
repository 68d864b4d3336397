"""W3C traceparent / tracestate / baggage in call attachments."""

from __future__ import annotations

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from instrument import RemoteParent, format_traceparent, parse_traceparent
from instrument._propagation import extract_baggage, inject_baggage

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_round_trip() -> None:
    value = format_traceparent(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True)
    assert value == GOOD
    assert parse_traceparent(value, "a=1") == RemoteParent(
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, "a=1"
    )
    assert not parse_traceparent(GOOD[:-2] + "00").sampled  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        GOOD[:-1],
        GOOD.upper(),
        "ff" + GOOD[2:],
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        GOOD + "-extra",  # version 00 has no more fields
        GOOD.replace("-", "_"),
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    ],
)
def test_malformed_values_are_ignored(value: object) -> None:
    assert parse_traceparent(value) is None


def test_later_versions_may_append_fields() -> None:
    assert parse_traceparent("01" + GOOD[2:] + "-what-ever") is not None


def test_oversized_tracestate_is_dropped_not_the_parent() -> None:
    parent = parse_traceparent(GOOD, "x=" + "y" * 600)
    assert parent is not None and parent.trace_state == ""


def test_baggage_travels_through_attachments() -> None:
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        attachments: dict[str, object] = {}
        inject_baggage(attachments)
    finally:
        otel_context.detach(token)
    assert attachments == {"baggage": "tenant=acme"}
    ctx = extract_baggage(attachments, otel_context.Context())
    assert baggage.get_baggage("tenant", ctx) == "acme"
    empty: dict[str, object] = {}
    inject_baggage(empty)
    assert empty == {}
