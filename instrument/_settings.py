"""Instrumentation settings: built in code, or read once from ``CALLSCOPE_*`` variables."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callscope_contract import KPIS_TOPIC, SPANS_TOPIC
from callscope_contract import environment as env

__all__ = ["Settings"]


def _default_service() -> str:
    script = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    return script if script and script not in ("-c", "-m", "") else "unknown_service"


def _default_spool_dir() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local/state"
    )
    return os.path.join(state, "callscope", "spool")


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    """Everything :func:`instrument.configure` needs; defaults suit a developer laptop."""

    service_name: str = field(default_factory=_default_service)
    instance: str = ""  # default host:pid
    host: str = field(default_factory=socket.gethostname)
    exporter: str = ""  # default: kafka with a bootstrap, else spool
    kafka_bootstrap: str = ""
    kafka_client: str = "auto"  # auto (confluent when installed), confluent, kafka-python
    kafka_options: dict[str, Any] = field(default_factory=dict)  # the client's own settings
    spans_topic: str = SPANS_TOPIC
    kpis_topic: str = KPIS_TOPIC
    sampler: str = "parentbased_traceidratio"
    sample_ratio: float = 1.0
    spool_dir: str = field(default_factory=_default_spool_dir)
    spool_max_bytes: int = 256 << 20
    spool_fsync: bool = False
    kpi_interval_s: float = 10.0
    flush_interval_s: float = 0.2
    queue_size: int = 65536
    log_correlation: bool = True
    libraries: str = "all"

    def __post_init__(self) -> None:
        if not self.instance:
            self.instance = f"{self.host}:{os.getpid()}"
        if not self.exporter:
            self.exporter = "kafka" if self.kafka_bootstrap else "spool"
        if not 0.0 <= self.sample_ratio <= 1.0:
            raise ValueError(f"{env.CALLSCOPE_SAMPLE_RATIO} must be within 0..1")
        if self.kpi_interval_s <= 0 or self.flush_interval_s <= 0 or self.queue_size <= 0:
            raise ValueError("intervals and the queue size must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the ``CALLSCOPE_*`` variables (see :mod:`instrument.environment`)."""
        e = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        def take(name: str, key: str, convert: Any = str) -> None:
            raw = e.get(name)
            if raw is not None and raw.strip() != "":
                try:
                    values[key] = convert(raw.strip())
                except ValueError:
                    raise ValueError(f"{name}={raw!r} is not a valid value") from None

        take(env.CALLSCOPE_SERVICE_NAME, "service_name")
        take(env.CALLSCOPE_INSTANCE, "instance")
        take(env.CALLSCOPE_EXPORTER, "exporter")
        take(env.CALLSCOPE_KAFKA_BOOTSTRAP, "kafka_bootstrap")
        take(env.CALLSCOPE_KAFKA_CLIENT, "kafka_client")
        take(env.CALLSCOPE_SPANS_TOPIC, "spans_topic")
        take(env.CALLSCOPE_KPIS_TOPIC, "kpis_topic")
        take(env.CALLSCOPE_SAMPLER, "sampler")
        take(env.CALLSCOPE_SAMPLE_RATIO, "sample_ratio", float)
        take(env.CALLSCOPE_SPOOL_DIR, "spool_dir")
        take(env.CALLSCOPE_SPOOL_MAX_BYTES, "spool_max_bytes", int)
        take(env.CALLSCOPE_SPOOL_FSYNC, "spool_fsync", _flag)
        take(env.CALLSCOPE_KPI_INTERVAL_S, "kpi_interval_s", float)
        take(env.CALLSCOPE_FLUSH_INTERVAL_MS, "flush_interval_s", lambda v: float(v) / 1000)
        take(env.CALLSCOPE_QUEUE_SIZE, "queue_size", int)
        take(env.CALLSCOPE_LOG_CORRELATION, "log_correlation", _flag)
        take(env.CALLSCOPE_LIBRARIES, "libraries")
        values.update(overrides)
        return cls(**values)
