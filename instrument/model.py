"""The span record and KPI sample, re-exported from :mod:`callscope_contract`.

The contract lives in its own leaf package so Spark executors, storage and the
collector read it without importing instrumentation; this module keeps
``from instrument.model import SpanRecord`` working for code written against it.
"""

from __future__ import annotations

from callscope_contract import (
    KIND_NAMES,
    ROLES,
    SCHEMA_VERSION,
    STATUSES,
    KpiSample,
    SpanEvent,
    SpanLink,
    SpanRecord,
    ValidationError,
    decode_kpi,
    decode_span,
)

__all__ = [
    "KIND_NAMES",
    "ROLES",
    "SCHEMA_VERSION",
    "STATUSES",
    "KpiSample",
    "SpanEvent",
    "SpanLink",
    "SpanRecord",
    "ValidationError",
    "decode_kpi",
    "decode_span",
]
