"""Span factories for the storage and collector tests."""

from __future__ import annotations

import itertools
import os
from typing import Any

from instrument.model import SpanEvent, SpanRecord

BASE_US = 1_764_150_000_000_000
_ids = itertools.count(1)


def trace_id() -> str:
    return os.urandom(16).hex()


def span(
    trace: str | None = None,
    *,
    service: str = "orders",
    name: str = "orders.OrderService/create",
    start_us: int = BASE_US,
    duration_us: int = 1000,
    status: str = "OK",
    parent: str = "",
    attributes: dict[str, Any] | None = None,
    kind: str = "SERVER",
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace or trace_id(),
        span_id=f"{next(_ids):016x}",
        parent_span_id=parent,
        name=name,
        kind=kind,
        service=service,
        instance="10.0.0.7:7001",
        host="node-3",
        peer_service="gateway",
        peer_instance="10.0.0.5:51544",
        start_us=start_us,
        duration_us=duration_us,
        status=status,
        error_code="TIMEOUT" if status == "ERROR" else "",
        error_message="deadline exceeded" if status == "ERROR" else "",
        attributes=attributes if attributes is not None else {"zone": "a"},
        events=[SpanEvent(start_us + 10, "retry", {"attempt": 2})],
    )
