"""The collector's public face, and the records' rejection codes."""

from __future__ import annotations

import collector
from collector import SPANS_TOPIC, Message, Rejection, decode

from .helpers import span_json


def test_the_public_api_is_listed() -> None:
    for name in collector.__all__:
        assert hasattr(collector, name), name


def test_each_bad_record_gets_a_stable_code_and_a_reason() -> None:
    cases = {
        b"[1": "NOT_JSON",
        span_json(schema=2): "UNSUPPORTED_SCHEMA",
        span_json(kind="SIDEWAYS"): "INVALID_FIELD",
        b" " * (2 << 20): "TOO_LARGE",
    }
    for value, code in cases.items():
        result = decode(Message(SPANS_TOPIC, value))
        assert isinstance(result, Rejection) and result.code == code and result.reason
    assert decode(Message("elsewhere", b"{}")).code == "UNKNOWN_TOPIC"  # type: ignore[union-attr]
    assert decode(Message(SPANS_TOPIC, span_json())).service == "orders"  # type: ignore[union-attr]
