"""Every ``CALLSCOPE_*`` environment variable, each defined and documented here once.

Each constant's value is its own name (``CALLSCOPE_SPOOL_DIR == "CALLSCOPE_SPOOL_DIR"``),
so a reader writes ``os.environ.get(environment.CALLSCOPE_SPOOL_DIR)`` and a typo fails
at import, not silently at run time. Who reads each: instrumentation through
``instrument.Settings.from_env`` (``CALLSCOPE_NATIVE`` once, when ``instrument`` is
imported), the registry's URL and database, the CLI's store URL and token, the local
stack's directory and endpoints.
"""

from __future__ import annotations

__all__ = [
    "CALLSCOPE_DISABLED",
    "CALLSCOPE_ELASTICSEARCH_URL",
    "CALLSCOPE_EXPORTER",
    "CALLSCOPE_FLUSH_INTERVAL_MS",
    "CALLSCOPE_HBASE_THRIFT",
    "CALLSCOPE_INSTANCE",
    "CALLSCOPE_KAFKA_BOOTSTRAP",
    "CALLSCOPE_KAFKA_CLIENT",
    "CALLSCOPE_KPIS_TOPIC",
    "CALLSCOPE_KPI_INTERVAL_S",
    "CALLSCOPE_LIBRARIES",
    "CALLSCOPE_LOG_CORRELATION",
    "CALLSCOPE_NATIVE",
    "CALLSCOPE_QUEUE_SIZE",
    "CALLSCOPE_REGISTRY",
    "CALLSCOPE_REGISTRY_DB",
    "CALLSCOPE_REGISTRY_TOKEN",
    "CALLSCOPE_SAMPLER",
    "CALLSCOPE_SAMPLE_RATIO",
    "CALLSCOPE_SERVICE_NAME",
    "CALLSCOPE_SPANS_TOPIC",
    "CALLSCOPE_SPARK_JARS",
    "CALLSCOPE_SPARK_MASTER",
    "CALLSCOPE_SPOOL_DIR",
    "CALLSCOPE_SPOOL_FSYNC",
    "CALLSCOPE_SPOOL_MAX_BYTES",
    "CALLSCOPE_STACK_DIR",
    "CALLSCOPE_STACK_KEEP",
    "CALLSCOPE_STACK_TIMEOUT",
    "CALLSCOPE_STORE",
    "CALLSCOPE_ZOOKEEPER",
]

# -- instrumentation (instrument.Settings.from_env) ----------------------------
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


# -- stores, registry, CLI ------------------------------------------------------
CALLSCOPE_STORE = "CALLSCOPE_STORE"
"""The span and analytics store URL of the CLI's commands (default ``sqlite://callscope.db``)."""

CALLSCOPE_REGISTRY = "CALLSCOPE_REGISTRY"
"""The registry URL a process uses when none is given (default ``memory://``)."""

CALLSCOPE_REGISTRY_DB = "CALLSCOPE_REGISTRY_DB"
"""The embedded registry server's SQLite file (default ``~/.local/state/callscope/registry.db``)."""

CALLSCOPE_REGISTRY_TOKEN = "CALLSCOPE_REGISTRY_TOKEN"
"""The token ``callscope registry`` commands present to a registry that checks one."""

# -- analytics (pipeline/) -----------------------------------------------------
CALLSCOPE_SPARK_MASTER = "CALLSCOPE_SPARK_MASTER"
"""Where ``callscope pipeline`` jobs run: ``local[*]`` (default), ``local[2]``,
``spark://host:7077``, ``yarn`` or ``k8s://https://host:443``."""

CALLSCOPE_SPARK_JARS = "CALLSCOPE_SPARK_JARS"
"""Comma-separated jars added to the job's classpath (Spark's Kafka source and its
dependencies), for clusters where ``callscope pipeline`` cannot fetch them itself."""

# -- the local stack (``callscope stack``) and its endpoints ------------------
CALLSCOPE_STACK_DIR = "CALLSCOPE_STACK_DIR"
"""Root of the stack's files: downloads in ``dist/``; configs, data, logs, PIDs in ``run/``.
Default ``$XDG_CACHE_HOME/callscope/stack`` (``~/.cache/callscope/stack``), outside the repo."""

CALLSCOPE_STACK_KEEP = "CALLSCOPE_STACK_KEEP"
"""When ``1``, the pytest fixtures leave the services they started running after the session,
so the next run starts in seconds."""

CALLSCOPE_STACK_TIMEOUT = "CALLSCOPE_STACK_TIMEOUT"
"""Seconds to wait for one service to become ready (default 180: a cold JVM on 2 cores)."""

CALLSCOPE_ELASTICSEARCH_URL = "CALLSCOPE_ELASTICSEARCH_URL"
"""Elasticsearch's URL, as ``callscope stack env`` prints it."""

CALLSCOPE_HBASE_THRIFT = "CALLSCOPE_HBASE_THRIFT"
"""HBase's Thrift server, ``host:port``, as ``callscope stack env`` prints it."""

CALLSCOPE_ZOOKEEPER = "CALLSCOPE_ZOOKEEPER"
"""ZooKeeper's connect string, as ``callscope stack env`` prints it."""
