"""callscope instrumentation: TraceID spans and health KPIs from RPC interceptors.

``import instrument.auto`` sets everything up from ``CALLSCOPE_*`` variables;
:func:`configure` does the same in code. The span record and KPI sample contract
is :mod:`instrument.model`; every variable is in :mod:`instrument.environment`.
"""

from __future__ import annotations

from callscope_contract import KpiSample, SpanEvent, SpanRecord, ValidationError

from ._exporters import (
    ConsoleExporter,
    Exporter,
    MemoryExporter,
    NullExporter,
    SpoolExporter,
    get_exporter,
    register_exporter,
)
from ._interceptors import ClientTracing, ServerTracing
from ._kafka import KafkaExporter
from ._kafka_confluent import ConfluentKafkaExporter
from ._kpi import LATENCY_BOUNDS_MS, KpiRecorder, ProcessStats, quantile
from ._launch import launch_environment
from ._logs import (
    DEFAULT_LOG_FORMAT,
    TraceContextFilter,
    disable_log_correlation,
    enable_log_correlation,
)
from ._pipeline import ExportPipeline
from ._propagation import RemoteParent, format_traceparent, parse_traceparent
from ._replay import Replayed, replay_spool
from ._sampling import Sampler, get_sampler, register_sampler
from ._settings import Settings
from ._setup import Instrumentation, configure, current
from ._span import Resource, Span, SpanSink, SpanSite, encode_span
from ._spool import Spool, SpoolEntry, SpoolReader, open_spool
from ._tracer import Tracer, TracerProvider

__all__ = [
    "DEFAULT_LOG_FORMAT",
    "LATENCY_BOUNDS_MS",
    "ClientTracing",
    "ConfluentKafkaExporter",
    "ConsoleExporter",
    "ExportPipeline",
    "Exporter",
    "Instrumentation",
    "KafkaExporter",
    "KpiRecorder",
    "KpiSample",
    "MemoryExporter",
    "NullExporter",
    "ProcessStats",
    "RemoteParent",
    "Replayed",
    "Resource",
    "Sampler",
    "ServerTracing",
    "Settings",
    "Span",
    "SpanEvent",
    "SpanRecord",
    "SpanSink",
    "SpanSite",
    "Spool",
    "SpoolEntry",
    "SpoolExporter",
    "SpoolReader",
    "TraceContextFilter",
    "Tracer",
    "TracerProvider",
    "ValidationError",
    "configure",
    "current",
    "disable_log_correlation",
    "enable_log_correlation",
    "encode_span",
    "format_traceparent",
    "get_exporter",
    "get_sampler",
    "launch_environment",
    "open_spool",
    "parse_traceparent",
    "quantile",
    "register_exporter",
    "register_sampler",
    "replay_spool",
]
