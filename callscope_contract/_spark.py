"""The contract as Spark sees it: a ``StructType`` per record, and records as rows.

pyspark is imported only when a schema is asked for, so this leaf stays free to
import where no Spark is installed (a service, the collector). Column names and
order are the dataclass fields' (:data:`SPAN_COLUMNS`); attribute values become
strings (JSON for anything but a string), so a map column holds any span's
attributes and a job filters on them without a UDF.
"""

from __future__ import annotations

import json
from dataclasses import fields
from functools import cache
from typing import TYPE_CHECKING, Any

from ._kpis import KpiSample
from ._spans import SpanRecord

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

__all__ = ["KPI_COLUMNS", "SPAN_COLUMNS", "kpi_row", "kpi_schema", "span_row", "span_schema"]

SPAN_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SpanRecord))
KPI_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(KpiSample))
_KPI_DOUBLES = ("window_s", "qps", "cpu_percent")


@cache
def span_schema() -> StructType:
    """The Spark schema of a span DataFrame (columns as :data:`SPAN_COLUMNS`).

    Every column is nullable, as Spark's JSON and Kafka readers make them; readers drop
    the rows that lack a required field instead.
    """
    from pyspark.sql import types as t

    text = t.StringType()
    tags = t.MapType(text, text)
    event = t.StructType(
        [
            t.StructField("time_us", t.LongType()),
            t.StructField("name", text),
            t.StructField("attributes", tags),
        ]
    )
    link = t.StructType(
        [
            t.StructField("trace_id", text),
            t.StructField("span_id", text),
            t.StructField("trace_state", text),
            t.StructField("attributes", tags),
        ]
    )
    kinds = {
        "start_us": t.LongType(),
        "duration_us": t.LongType(),
        "attributes": tags,
        "events": t.ArrayType(event),
        "links": t.ArrayType(link),
        "schema": t.IntegerType(),
    }
    return t.StructType([t.StructField(name, kinds.get(name, text)) for name in SPAN_COLUMNS])


@cache
def kpi_schema() -> StructType:
    """The Spark schema of a KPI DataFrame (columns as :data:`KPI_COLUMNS`)."""
    from pyspark.sql import types as t

    counts = t.MapType(t.StringType(), t.LongType())
    latency = t.StructType(
        [t.StructField(q, t.DoubleType(), True) for q in ("p50", "p95", "p99")]
        + [t.StructField("buckets", counts, True)]
    )
    kinds = {
        "window_start_us": t.LongType(),
        "window_s": t.DoubleType(),
        "count": t.LongType(),
        "errors": t.LongType(),
        "qps": t.DoubleType(),
        "in_flight": t.LongType(),
        "latency_ms": latency,
        "cpu_percent": t.DoubleType(),
        "rss_bytes": t.LongType(),
        "gc_collections": counts,
        "counters": counts,
        "schema": t.IntegerType(),
    }
    return t.StructType(
        [t.StructField(name, kinds.get(name, t.StringType()), True) for name in KPI_COLUMNS]
    )


def span_row(span: SpanRecord) -> tuple[Any, ...]:
    """One span as a row of :func:`span_schema` (for ``spark.createDataFrame``)."""
    values = {f: getattr(span, f) for f in SPAN_COLUMNS}
    values["attributes"] = _tags(span.attributes)
    values["events"] = [(e.time_us, e.name, _tags(e.attributes)) for e in span.events]
    values["links"] = [
        (k.trace_id, k.span_id, k.trace_state, _tags(k.attributes)) for k in span.links
    ]
    return tuple(values[f] for f in SPAN_COLUMNS)


def kpi_row(sample: KpiSample) -> tuple[Any, ...]:
    """One KPI sample as a row of :func:`kpi_schema`."""
    latency = sample.latency_ms
    quantiles = [_float(latency.get(q)) for q in ("p50", "p95", "p99")]
    values = {f: getattr(sample, f) for f in KPI_COLUMNS}
    for name in _KPI_DOUBLES:
        values[name] = float(values[name])
    values["latency_ms"] = (*quantiles, dict(latency.get("buckets") or {}))
    return tuple(values[f] for f in KPI_COLUMNS)


def _tags(attributes: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else json.dumps(value, default=str)
        for key, value in attributes.items()
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
