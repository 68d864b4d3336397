"""The Spark schemas match the records field for field, and rows fit them.

``StructType`` building and row checking are pure Python in pyspark (no JVM), so
these run without a SparkSession.
"""

from __future__ import annotations

from dataclasses import fields

from pyspark.sql.types import ArrayType, LongType, MapType, StructType, _make_type_verifier

from callscope_contract import (
    KpiSample,
    SpanEvent,
    SpanRecord,
    kpi_row,
    kpi_schema,
    span_row,
    span_schema,
)


def a_span() -> SpanRecord:
    return SpanRecord(
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        span_id="00f067aa0ba902b7",
        parent_span_id="a2fb4a1d1a96d312",
        name="orders.OrderService/create",
        kind="SERVER",
        service="orders",
        instance="10.0.0.7:7001",
        start_us=1764150000123456,
        duration_us=1834,
        status="ERROR",
        error_code="TIMEOUT",
        attributes={"rpc.method": "create", "attempt": 2, "tags": ["a", "b"]},
        events=[SpanEvent(1764150000124000, "retry", {"attempt": 2})],
    )


def test_span_schema_has_every_record_field_in_order() -> None:
    schema = span_schema()
    assert isinstance(schema, StructType)
    assert schema.names == [f.name for f in fields(SpanRecord)]
    assert schema["start_us"].dataType == LongType()
    assert isinstance(schema["attributes"].dataType, MapType)
    assert isinstance(schema["events"].dataType, ArrayType)


def test_kpi_schema_has_every_record_field_in_order() -> None:
    assert kpi_schema().names == [f.name for f in fields(KpiSample)]


def test_a_span_row_fits_the_schema_and_keeps_attributes_as_text() -> None:
    row = span_row(a_span())
    _make_type_verifier(span_schema())(row)  # raises on any mismatch
    as_dict = dict(zip(span_schema().names, row, strict=True))
    assert as_dict["attributes"] == {"rpc.method": "create", "attempt": "2", "tags": '["a", "b"]'}
    assert as_dict["events"] == [(1764150000124000, "retry", {"attempt": "2"})]


def test_a_kpi_row_fits_the_schema() -> None:
    sample = KpiSample(
        service="orders",
        instance="10.0.0.7:7001",
        method="create",
        role="provider",
        window_start_us=1764150000000000,
        window_s=10,
        count=5123,
        errors=12,
        latency_ms={"p50": 1.2, "p95": 4.8, "p99": 9.7, "buckets": {"1": 2100, "+Inf": 13}},
    )
    _make_type_verifier(kpi_schema())(kpi_row(sample))
