"""Every ``CALLSCOPE_*`` variable instrumentation reads, each defined and documented once.

:func:`instrument.Settings.from_env` is the only reader; everything else takes a
:class:`~instrument.Settings`, so tests and programs can configure in code. The one
exception is ``CALLSCOPE_NATIVE``, read once when ``instrument`` is imported: it picks
the classes spans and KPI counters are made of.
"""

from __future__ import annotations

__all__ = [
    "CALLSCOPE_DISABLED",
    "CALLSCOPE_EXPORTER",
    "CALLSCOPE_FLUSH_INTERVAL_MS",
    "CALLSCOPE_INSTANCE",
    "CALLSCOPE_KAFKA_BOOTSTRAP",
    "CALLSCOPE_KAFKA_CLIENT",
    "CALLSCOPE_KPIS_TOPIC",
    "CALLSCOPE_KPI_INTERVAL_S",
    "CALLSCOPE_LIBRARIES",
    "CALLSCOPE_LOG_CORRELATION",
    "CALLSCOPE_NATIVE",
    "CALLSCOPE_QUEUE_SIZE",
    "CALLSCOPE_SAMPLER",
    "CALLSCOPE_SAMPLE_RATIO",
    "CALLSCOPE_SERVICE_NAME",
    "CALLSCOPE_SPANS_TOPIC",
    "CALLSCOPE_SPOOL_DIR",
    "CALLSCOPE_SPOOL_FSYNC",
    "CALLSCOPE_SPOOL_MAX_BYTES",
]

CALLSCOPE_SERVICE_NAME = "CALLSCOPE_SERVICE_NAME"
"""This process's service name on its spans and KPIs (default: the script's name)."""

CALLSCOPE_INSTANCE = "CALLSCOPE_INSTANCE"
"""This process's instance id (default ``host:pid``; a server's spans use its address)."""

CALLSCOPE_KAFKA_BOOTSTRAP = "CALLSCOPE_KAFKA_BOOTSTRAP"
"""Kafka bootstrap servers, ``host:port[,host:port]``. Unset: the spool is the transport."""

CALLSCOPE_KAFKA_CLIENT = "CALLSCOPE_KAFKA_CLIENT"
"""Kafka client library: ``auto`` (default: confluent-kafka when installed, else
kafka-python), ``confluent`` or ``kafka-python``."""

CALLSCOPE_EXPORTER = "CALLSCOPE_EXPORTER"
"""Exporter by name: ``kafka``, ``spool``, ``console``, ``memory``, ``none`` or a plugin
(entry-point group ``callscope.exporters``). Default: ``kafka`` when a bootstrap is set,
else ``spool``."""

CALLSCOPE_SPANS_TOPIC = "CALLSCOPE_SPANS_TOPIC"
"""Topic for span records (default ``callscope.spans``)."""

CALLSCOPE_KPIS_TOPIC = "CALLSCOPE_KPIS_TOPIC"
"""Topic for KPI samples (default ``callscope.kpis``)."""

CALLSCOPE_SAMPLER = "CALLSCOPE_SAMPLER"
"""Sampler by name (default ``parentbased_traceidratio``; also ``traceidratio``,
``parentbased_always_on``, ``always_on``, ``always_off``). Errors are always kept."""

CALLSCOPE_SAMPLE_RATIO = "CALLSCOPE_SAMPLE_RATIO"
"""Fraction of new traces sampled, 0..1 (default 1.0)."""

CALLSCOPE_SPOOL_DIR = "CALLSCOPE_SPOOL_DIR"
"""Directory of the durable spool (default ``~/.local/state/callscope/spool``)."""

CALLSCOPE_SPOOL_MAX_BYTES = "CALLSCOPE_SPOOL_MAX_BYTES"
"""Size cap of one process's spool; beyond it records are dropped and counted
(default 268435456, 256 MiB)."""

CALLSCOPE_SPOOL_FSYNC = "CALLSCOPE_SPOOL_FSYNC"
"""``1`` to fsync every spool write (survives power loss, not only a crash; default 0)."""

CALLSCOPE_KPI_INTERVAL_S = "CALLSCOPE_KPI_INTERVAL_S"
"""Seconds between KPI samples (default 10)."""

CALLSCOPE_FLUSH_INTERVAL_MS = "CALLSCOPE_FLUSH_INTERVAL_MS"
"""How often the export thread ships queued spans, in ms (default 200)."""

CALLSCOPE_QUEUE_SIZE = "CALLSCOPE_QUEUE_SIZE"
"""Spans held in memory before the export thread takes them; beyond it spans are
dropped and counted (default 65536)."""

CALLSCOPE_LOG_CORRELATION = "CALLSCOPE_LOG_CORRELATION"
"""``0`` to leave :mod:`logging` untouched (default 1: trace and span ids on records)."""

CALLSCOPE_LIBRARIES = "CALLSCOPE_LIBRARIES"
"""Installed OpenTelemetry instrumentations to turn on (entry points
``opentelemetry_instrumentor``): ``all`` (default), ``none``, or names like ``requests,redis``."""

CALLSCOPE_DISABLED = "CALLSCOPE_DISABLED"
"""``1`` makes ``import instrument.auto`` do nothing."""

CALLSCOPE_NATIVE = "CALLSCOPE_NATIVE"
"""``0`` to run the interceptors' pure-Python path instead of the C hot path
(``instrument/_hotpath.c``, built at install when a C compiler is present; default 1).
Same spans and KPIs either way; the C path adds less than half the CPU per traced call."""
