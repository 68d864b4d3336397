"""Where encoded records go, chosen by name (STYLE §4): ``kafka``, ``spool``, ``console``,
``memory``, ``none``, or a plugin from the ``callscope.exporters`` entry-point group.

An exporter is called only from the export thread. It returns the records it
could not deliver (instead of raising), so the pipeline spools exactly those.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TextIO

from callscope_contract import KpiSample, SpanRecord
from rpc import extension_point

from ._spool import Spool, SpoolEntry

if TYPE_CHECKING:
    from ._settings import Settings

__all__ = [
    "ConsoleExporter",
    "Exporter",
    "MemoryExporter",
    "NullExporter",
    "SpoolExporter",
    "get_exporter",
    "register_exporter",
]

Record = SpoolEntry  # (topic, key, value): one message for one topic


class Exporter(Protocol):
    """Delivers records; never raises for a delivery failure, returns what was not delivered."""

    def export(self, records: Sequence[Record]) -> Sequence[Record]: ...

    def flush(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class NullExporter:
    """Accepts and discards everything (``CALLSCOPE_EXPORTER=none``)."""

    def export(self, records: Sequence[Record]) -> Sequence[Record]:
        return ()

    def flush(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryExporter:
    """Keeps every record in memory: for tests and for looking at what would be sent."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def export(self, records: Sequence[Record]) -> Sequence[Record]:
        with self._lock:
            self.records.extend(records)
        return ()

    def values(self, topic_suffix: str) -> list[bytes]:
        with self._lock:
            return [r.value for r in self.records if r.topic.endswith(topic_suffix)]

    def spans(self) -> list[SpanRecord]:
        """Every span record received so far, validated against the contract."""
        return [SpanRecord.from_json(v) for v in self.values("spans")]

    def kpis(self) -> list[KpiSample]:
        return [KpiSample.from_json(v) for v in self.values("kpis")]

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    def flush(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass


class ConsoleExporter:
    """One JSON line per record on stderr (or ``stream``), prefixed by its topic."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def export(self, records: Sequence[Record]) -> Sequence[Record]:
        stream = self.stream or sys.stderr
        for record in records:
            stream.write(f"{record.topic} {record.value.decode()}\n")
        stream.flush()
        return ()

    def flush(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        pass


class SpoolExporter:
    """The spool as the transport (no Kafka configured): a collector reads it later."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def export(self, records: Sequence[Record]) -> Sequence[Record]:
        written = self.spool.append(records)
        return records[written:]

    def flush(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self.spool.close()


ExporterFactory = Callable[["Settings"], Exporter]


def _kafka(settings: Settings) -> Exporter:
    """confluent-kafka when it is installed (a few µs per record, off the GIL), else
    kafka-python (tens of µs per record under the GIL); ``kafka_client`` forces one."""
    topics = (settings.spans_topic, settings.kpis_topic)
    client = settings.kafka_client
    if client == "auto":
        try:
            import confluent_kafka  # noqa: F401

            client = "confluent"
        except ImportError:
            client = "kafka-python"
    if client == "confluent":
        from ._kafka_confluent import ConfluentKafkaExporter

        return ConfluentKafkaExporter(
            settings.kafka_bootstrap, topics=topics, **settings.kafka_options
        )
    if client != "kafka-python":
        raise ValueError(f"unknown Kafka client {client!r}: auto, confluent or kafka-python")
    from ._kafka import KafkaExporter

    return KafkaExporter(settings.kafka_bootstrap, topics=topics, **settings.kafka_options)


def _console(settings: Settings) -> Exporter:
    return ConsoleExporter()


EXPORTERS = extension_point("exporters")
EXPORTERS.register("kafka", _kafka)
EXPORTERS.register("console", _console)
EXPORTERS.register("memory", lambda settings: MemoryExporter())
EXPORTERS.register("none", lambda settings: NullExporter())


def register_exporter(name: str, factory: ExporterFactory) -> None:
    """Make ``factory(settings)`` available as ``CALLSCOPE_EXPORTER=name``."""
    EXPORTERS.register(name, factory, replace=True)


def get_exporter(name: str, settings: Settings) -> Exporter:
    """The exporter ``name`` (``spool`` is built by the pipeline, which owns the spool)."""
    return EXPORTERS.get(name)(settings)
