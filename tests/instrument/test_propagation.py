"""W3C traceparent / tracestate / baggage in call attachments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry import context as otel_context

from instrument import RemoteParent, format_traceparent, parse_traceparent
from instrument._baggage import decode_baggage, encode_baggage
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
    attachments: dict[str, object] = {}
    inject_baggage(attachments, baggage.set_baggage("tenant", "acme", otel_context.Context()))
    assert attachments == {"baggage": "tenant=acme"}
    ctx = extract_baggage(attachments, otel_context.Context())
    assert baggage.get_baggage("tenant", ctx) == "acme"
    empty: dict[str, object] = {}
    inject_baggage(empty, otel_context.Context())
    assert empty == {}


@pytest.mark.parametrize(
    ("header", "values"),
    [
        ("id=DF%2028", {"id": "DF 28"}),  # percent-decoding
        ("op=a+b", {"op": "a+b"}),  # "+" is a plus sign, not a space (no form-decoding)
        ("k = v ; ttl=3 ; flag, n=%E2%82%AC", {"k": "v", "n": "€"}),  # OWS, properties, UTF-8
        ("bad=%FF", {"bad": "\ufffd"}),  # not UTF-8: the replacement character
        ('a=1,not a key=2,b=x"y,c=3', {"a": "1", "c": "3"}),  # malformed members skipped
        ("a=1,a=2", {"a": "2"}),
    ],
)
def test_baggage_is_decoded_as_w3c_says(header: str, values: dict[str, str]) -> None:
    received = decode_baggage(header)
    assert received is not None and received.values == values


def test_baggage_over_the_limits_is_dropped() -> None:
    assert decode_baggage("k=" + "v" * 9000) is None
    many = decode_baggage(",".join(f"k{i}=v" for i in range(300)))
    assert many is not None and len(many.values) == 180
    assert decode_baggage(" , ,") is None


def test_baggage_forwarded_unchanged_unless_changed() -> None:
    header = "id=DF%2028,op=a+b;ttl=3,x=%7e"
    ctx = extract_baggage({"baggage": header}, otel_context.Context())
    forwarded: dict[str, object] = {}
    inject_baggage(forwarded, ctx)
    assert forwarded == {"baggage": header}  # byte for byte
    changed = baggage.set_baggage("user", "x y,z;%", ctx)
    inject_baggage(forwarded, changed)  # unchanged members as received; new ones encoded
    assert forwarded == {"baggage": "id=DF%2028,op=a+b;ttl=3,x=%7e,user=x%20y%2Cz%3B%25"}
    inject_baggage(forwarded, baggage.set_baggage("op", "c", ctx))
    assert forwarded == {"baggage": "id=DF%2028,op=c,x=%7e"}
    again = extract_baggage(forwarded, otel_context.Context())
    assert baggage.get_all(again) == {"id": "DF 28", "op": "c", "x": "~"}


@given(st.dictionaries(st.from_regex(r"[a-z0-9_*+-]{1,8}", fullmatch=True), st.text(max_size=20)))
def test_any_baggage_round_trips(values: dict[str, str]) -> None:
    header = encode_baggage(values)
    received = decode_baggage(header) if header else None
    assert (received.values if received else {}) == values


def test_baggage_a_peer_could_not_read_is_not_sent() -> None:
    header = encode_baggage({"ok": 1, "not a token": "v", "lone": "\ud800"})
    assert header == "ok=1,lone=%ED%A0%80"  # the peer reads U+FFFD, the call goes on


@given(st.text(max_size=300) | st.from_regex(r"([a-z]{1,3} ?= ?[%+a-zA-Z0-9;=]{0,6},?){0,6}"))
def test_any_baggage_header_decodes_without_raising_and_survives_forwarding(header: str) -> None:
    received = decode_baggage(header)
    if received is None:
        return
    assert all(isinstance(v, str) for v in received.values.values())
    assert encode_baggage(received.values, received) == header  # unchanged: as it came
    again = decode_baggage(encode_baggage(dict(received.values), received))  # "changed"
    assert again is not None and again.values == received.values
