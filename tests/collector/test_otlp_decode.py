"""The protobuf fast path builds exactly the record the contract's ``from_dict`` would."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector import _otlp, otlp_spans

from .otlp import kv


def _id(rng: random.Random, size: int) -> bytes:
    """Mostly valid; sometimes all zero, short or empty."""
    if rng.random() < 0.85:
        return rng.randbytes(size)
    return rng.choice([bytes(size), rng.randbytes(size - 1), b""])


def _odd(rng: random.Random, usual: object, *odd: object) -> object:
    return usual if rng.random() < 0.9 else rng.choice(odd)


def _span(rng: random.Random) -> Span:
    start = _odd(rng, 1_764_150_000_000_000_000, 0, 2**63 + 5, rng.randrange(2**62))
    span = Span(
        trace_id=_id(rng, 16), span_id=_id(rng, 8),
        parent_span_id=_odd(rng, b"", _id(rng, 8), rng.randbytes(8)),
        name=_odd(rng, "op", "", "ü/x"), kind=rng.randrange(7),
        start_time_unix_nano=start, end_time_unix_nano=rng.choice([start, start + 5000, 0]),
        attributes=[kv(rng.choice(["a", "peer.service", "server.address", "error.type"]),
                       rng.choice([1, "x", 2.5, True, float("nan")])) for _ in range(3)],
        status=Status(code=rng.randrange(3), message=rng.choice(["", "boom"])),
    )  # fmt: skip
    for _ in range(rng.randrange(3)):
        span.events.add(time_unix_nano=_odd(rng, 5, 2**64 - 1), name=_odd(rng, "e", ""))
    for _ in range(rng.randrange(3)):
        span.links.add(trace_id=_id(rng, 16), span_id=_id(rng, 8), trace_state="k=v")
    return span


def test_fast_and_general_paths_agree_on_every_span(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(7)
    resources = [{"service.name": "shop", "host.name": "h", "deployment.environment": "ci"},
                 {}, {"service.name": ""}]  # fmt: skip
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": [kv(k, v) for k, v in attrs.items()]},
                scope_spans=[
                    ScopeSpans(scope={"name": "t"}, spans=[_span(rng) for _ in range(300)])
                ],
            )
            for attrs in resources
        ]
    )
    taken = []
    build = _otlp._pb_record

    def counted(*args: object) -> object:
        taken.append(record := build(*args))
        return record

    monkeypatch.setattr(_otlp, "_pb_record", counted)
    fast = [result for _, result in otlp_spans(request)]

    def refuse(*args: object) -> None:
        raise ValueError("general path only")

    monkeypatch.setattr(_otlp, "_pb_record", refuse)
    general = [result for _, result in otlp_spans(request)]
    assert fast == general
    records = [r for r in fast if isinstance(r, _otlp.SpanRecord)]
    assert 100 < len(records) < len(fast) and taken == records  # the fast path built each
