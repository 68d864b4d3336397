"""The span record and KPI sample contract: round trips, DESIGN §3.6 examples, named errors."""

from __future__ import annotations

import json

import pytest

from instrument.model import (
    SCHEMA_VERSION,
    KpiSample,
    SpanEvent,
    SpanRecord,
    ValidationError,
    decode_kpi,
    decode_span,
)

DESIGN_SPAN = {
    "schema": 1,
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
    "span_id": "00f067aa0ba902b7",
    "parent_span_id": "a2fb4a1d1a96d312",
    "name": "orders.OrderService/create",
    "kind": "SERVER",
    "service": "orders",
    "instance": "10.0.0.7:7001",
    "host": "node-3",
    "peer_service": "gateway",
    "peer_instance": "10.0.0.5:51544",
    "start_us": 1764150000123456,
    "duration_us": 1834,
    "status": "ERROR",
    "error_code": "TIMEOUT",
    "error_message": "deadline exceeded",
    "attributes": {
        "rpc.system": "callscope",
        "rpc.service": "orders.OrderService",
        "rpc.method": "create",
        "zone": "a",
    },
    "events": [{"time_us": 1764150000124000, "name": "retry", "attributes": {"attempt": 2}}],
}

DESIGN_KPI = {
    "schema": 1,
    "service": "orders",
    "instance": "10.0.0.7:7001",
    "method": "create",
    "role": "provider",
    "window_start_us": 1764150000000000,
    "window_s": 10,
    "count": 5123,
    "errors": 12,
    "in_flight": 4,
    "latency_ms": {
        "p50": 1.2,
        "p95": 4.8,
        "p99": 9.7,
        "buckets": {"1": 2100, "2": 2500, "5": 400, "10": 110, "+Inf": 13},
    },
    "cpu_percent": 37.5,
    "rss_bytes": 81234944,
}


def test_design_span_example_parses_and_round_trips() -> None:
    record = decode_span(json.dumps(DESIGN_SPAN))
    assert record.events == [SpanEvent(1764150000124000, "retry", {"attempt": 2})]
    assert record.schema == SCHEMA_VERSION
    again = SpanRecord.from_json(record.to_json())
    assert again == record
    assert json.loads(record.to_json()) == DESIGN_SPAN  # no links: the key is absent


def test_design_kpi_example_parses_and_round_trips() -> None:
    sample = decode_kpi(json.dumps(DESIGN_KPI))
    assert sample.latency_ms["p99"] == 9.7 and sample.count == 5123
    assert KpiSample.from_json(sample.to_json()) == sample


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"trace_id": "XYZ"}, "trace_id"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"span_id": "abc"}, "span_id"),
        ({"parent_span_id": "0" * 16}, "parent_span_id"),
        ({"kind": "SIDEWAYS"}, "kind"),
        ({"status": "MEH"}, "status"),
        ({"start_us": -1}, "start_us"),
        ({"duration_us": 1.5}, "duration_us"),
        ({"name": ""}, "name"),
        ({"service": None}, "service"),
        ({"schema": 99}, "schema"),
        ({"schema": "1"}, "schema"),
        ({"attributes": [1]}, "attributes"),
        ({"events": [{"time_us": 1, "name": ""}]}, "events[0].name"),
        ({"events": [{"time_us": "x", "name": "retry"}]}, "events[0].time_us"),
    ],
)
def test_bad_span_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        SpanRecord.from_dict({**DESIGN_SPAN, **change})
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "boss"}, "role"),
        ({"errors": 6000}, "errors"),
        ({"window_s": 0}, "window_s"),
        ({"latency_ms": {"p50": -1}}, "latency_ms.p50"),
        ({"latency_ms": {"buckets": {"x": 1}}}, "latency_ms.buckets.x"),
        ({"latency_ms": {"buckets": {"5": -1}}}, "latency_ms.buckets.5"),
        ({"method": ""}, "method"),
        ({"cpu_percent": float("nan")}, "cpu_percent"),
        ({"counters": {"dropped": "many"}}, "counters.dropped"),
    ],
)
def test_bad_kpi_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        KpiSample.from_dict({**DESIGN_KPI, **change})
    assert info.value.field == field


def test_not_json_and_not_an_object() -> None:
    with pytest.raises(ValidationError) as info:
        decode_span(b"{nope")
    assert info.value.field == "$"
    with pytest.raises(ValidationError) as info:
        decode_kpi(b"[1, 2]")
    assert info.value.field == "kpi"


def test_process_samples_need_no_method() -> None:
    sample = KpiSample.from_dict({**DESIGN_KPI, "role": "process", "method": ""})
    assert sample.role == "process"
