"""callscope's data contract: what every floor agrees on, importable for free.

The span record and KPI sample (DESIGN §3.3), their Spark schemas, the Kafka
topic names, the error-code strings and the ``CALLSCOPE_*`` environment variable
names live here. Importing this package loads nothing else of callscope -- no
``rpc``, no OpenTelemetry, no C module, and pyspark only when a schema is asked
for -- so a Spark executor, the collector, storage and the dashboard read the
contract without paying for the framework (``tests/test_contract_leaf.py`` keeps it so).

``instrument.model`` re-exports the records for code written against it.
"""

from __future__ import annotations

from . import environment
from ._checks import SCHEMA_VERSION, ValidationError
from ._codes import ERROR_CODES, ErrorCode
from ._kpis import ROLES, KpiSample, decode_kpi
from ._spans import KIND_NAMES, STATUSES, SpanEvent, SpanLink, SpanRecord, decode_span
from ._spark import KPI_COLUMNS, SPAN_COLUMNS, kpi_row, kpi_schema, span_row, span_schema
from ._topics import KPIS_TOPIC, SPANS_DLQ_TOPIC, SPANS_TOPIC, weights_key

__all__ = [
    "ERROR_CODES",
    "KIND_NAMES",
    "KPIS_TOPIC",
    "KPI_COLUMNS",
    "ROLES",
    "SCHEMA_VERSION",
    "SPANS_DLQ_TOPIC",
    "SPANS_TOPIC",
    "SPAN_COLUMNS",
    "STATUSES",
    "ErrorCode",
    "KpiSample",
    "SpanEvent",
    "SpanLink",
    "SpanRecord",
    "ValidationError",
    "decode_kpi",
    "decode_span",
    "environment",
    "kpi_row",
    "kpi_schema",
    "span_row",
    "span_schema",
    "weights_key",
]
