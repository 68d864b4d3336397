"""The lean tracer provider behind the OpenTelemetry API, and head sampling."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from instrument import Resource, Span, TracerProvider, encode_span, get_sampler, register_sampler
from instrument.model import decode_span


class Sink:
    def __init__(self) -> None:
        self.spans: list[Span] = []

    def on_end(self, span: Span) -> None:
        self.spans.append(span)


def provider(sampler: str = "parentbased_traceidratio", ratio: float = 1.0) -> tuple:
    sink = Sink()
    return TracerProvider(Resource("svc", "h:1", "h"), sink, get_sampler(sampler, ratio)), sink


def test_api_spans_nest_through_the_context() -> None:
    prov, sink = provider()
    tracer = prov.get_tracer("test")
    with tracer.start_as_current_span("outer", kind=trace.SpanKind.SERVER) as outer:
        assert trace.get_current_span() is outer
        with tracer.start_as_current_span("inner", attributes={"k": 1}) as inner:
            inner.set_attribute("x", "y")
            inner.add_event("something", {"n": 2})
        assert trace.get_current_span() is outer
    assert trace.get_current_span() is trace.INVALID_SPAN
    inner_rec, outer_rec = (decode_span(encode_span(s)) for s in sink.spans)
    assert outer_rec.kind == "SERVER" and inner_rec.kind == "INTERNAL"
    assert inner_rec.trace_id == outer_rec.trace_id
    assert inner_rec.parent_span_id == outer_rec.span_id and outer_rec.parent_span_id == ""
    assert inner_rec.attributes == {"k": 1, "x": "y"}
    assert inner_rec.events[0].name == "something"
    ctx = outer.get_span_context()
    assert ctx.is_valid and ctx.trace_flags.sampled and f"{ctx.trace_id:032x}" == outer_rec.trace_id


def test_exception_in_a_span_marks_it_failed_and_records_it() -> None:
    prov, sink = provider()
    with pytest.raises(ZeroDivisionError), prov.get_tracer("t").start_as_current_span("boom"):
        1 / 0  # noqa: B018
    record = decode_span(encode_span(sink.spans[0]))
    assert record.status == "ERROR" and "ZeroDivisionError" in record.error_message
    assert record.events[0].name == "exception"
    assert record.events[0].attributes["exception.type"] == "ZeroDivisionError"


async def test_decorator_makes_a_span_per_call_sync_and_async() -> None:
    prov, sink = provider()
    tracer = prov.get_tracer("t")

    @tracer.start_as_current_span("sync-op")
    def op() -> str:
        return trace.get_current_span().name  # type: ignore[attr-defined]

    @tracer.start_as_current_span("async-op")
    async def aop() -> str:
        await asyncio.sleep(0)
        return trace.get_current_span().name  # type: ignore[attr-defined]

    assert op() == "sync-op" and op() == "sync-op"
    assert await aop() == "async-op"
    assert [s.name for s in sink.spans] == ["sync-op", "sync-op", "async-op"]
    assert len({s.span_id for s in sink.spans}) == 3


def test_suppressed_context_makes_no_span() -> None:
    prov, sink = provider()
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        span = prov.get_tracer("t").start_span("x")
    finally:
        otel_context.detach(token)
    assert span is trace.INVALID_SPAN and not sink.spans


def test_ratio_sampling_keeps_about_the_ratio_and_always_keeps_errors() -> None:
    prov, sink = provider(ratio=0.25)
    tracer = prov.get_tracer("t")
    for i in range(4000):
        span = tracer.start_span("op")
        if i % 100 == 0:
            span.set_status(trace.StatusCode.ERROR, "bad")
        span.end()
    kept = [s for s in sink.spans if s.status == "OK"]
    errors = [s for s in sink.spans if s.status == "ERROR"]
    assert 800 <= len(kept) <= 1200
    assert len(errors) == 40  # every error, sampled or not


def test_children_follow_the_parent_decision() -> None:
    prov, sink = provider(ratio=0.0)
    tracer = prov.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        child = tracer.start_span("child")
        child.end()
    assert not root.get_span_context().trace_flags.sampled
    assert not sink.spans  # nothing kept: no error
    sampled_prov, _sampled_sink = provider(ratio=1.0)
    parent = sampled_prov.start_span("p", "SERVER", None)
    unsampled_child = prov.start_span("c", "CLIENT", parent)
    assert unsampled_child.sampled  # ratio 0, but the parent was sampled


def test_sampler_registry_by_name() -> None:
    class EveryOther:
        def __init__(self) -> None:
            self.n = 0

        def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
            self.n += 1
            return self.n % 2 == 0

    register_sampler("every_other", lambda ratio: EveryOther())
    assert isinstance(get_sampler("every_other"), EveryOther)
    with pytest.raises(LookupError, match="no sampler named"):
        get_sampler("nope")
    with pytest.raises(ValueError):
        get_sampler("traceidratio", 1.5)


def test_ids_are_random_and_never_zero() -> None:
    prov, _ = provider()
    spans = [prov.start_span("x", "INTERNAL", None) for _ in range(1000)]
    assert len({s.trace_id for s in spans}) == 1000
    assert all(s.span_id and s.trace_id for s in spans)


def test_end_is_idempotent_and_stops_recording() -> None:
    prov, sink = provider()
    span = prov.start_span("x", "INTERNAL", None)
    assert span.is_recording()
    span.end()
    span.end()
    assert not span.is_recording() and len(sink.spans) == 1


@pytest.mark.parametrize("with_orjson", [True, False])
def test_encoded_record_matches_the_reference(
    with_orjson: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from instrument import _span

    if not with_orjson:
        monkeypatch.setattr(_span, "_orjson_dumps", None)
    prov, _sink = provider()
    span = prov.start_span("a/b", "CLIENT", None, {"k": "v\u00e9", "b": b"\x01", "n": [1, 2]})
    span.add_event("retry", {"attempt": 2})
    span.fail("TIMEOUT", 'slow "quoted"')
    span.end()
    big = prov.start_span("x", "INTERNAL", None, {"huge": 1 << 70})
    big.end()
    assert decode_span(encode_span(big)).attributes == {"huge": 1 << 70}
    site = prov.site(
        "svc.S/m", "SERVER", instance="h:7", peer_service="caller", peer_instance="p:1",
        attributes={"rpc.system": "callscope", "rpc.method": "m"},
    )  # fmt: skip
    plain = prov.start_root(site)
    plain.end()
    own = prov.start(site, plain, {"rpc.attempt": 2, "rpc.method": "mm"})
    own.end()
    renamed = prov.start(site, plain)
    renamed.update_name("other")
    renamed.peer_service = "someone"
    renamed.end()
    for s in (span, big, plain, own, renamed):
        got = decode_span(encode_span(s))
        reference = _span.record_of(s)
        reference["attributes"] = {
            k: (str(v) if isinstance(v, bytes) else v) for k, v in reference["attributes"].items()
        }
        assert got == decode_span(json.dumps(reference).encode()), s
    assert decode_span(encode_span(own)).attributes == {
        "rpc.system": "callscope",
        "rpc.method": "mm",
        "rpc.attempt": 2,
    }
    assert decode_span(encode_span(plain)).instance == "h:7"
    renamed_rec = decode_span(encode_span(renamed))
    assert (renamed_rec.name, renamed_rec.peer_service, renamed_rec.instance) == (
        "other",
        "someone",
        "h:7",
    )
    assert site.name == "svc.S/m" and site.peer_service == "caller"  # the site is shared: kept


def test_span_start_time_is_the_wall_clock() -> None:
    import time

    prov, _sink = provider()
    before = time.time_ns()
    span = prov.start_span("t", "INTERNAL", None)
    after = time.time_ns()
    assert before - 1_000_000 <= span.start_ns <= after + 1_000_000
