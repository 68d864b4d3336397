"""callscope collector: spans and KPIs from Kafka, the spool or OTLP (HTTP, gRPC) into the stores.

Validation sends bad records to a dead-letter queue with a stable code and a reason;
batches are stored idempotently before offsets are committed (at-least-once, effectively
once); a failing store pauses consumption and is retried with backoff, so nothing is
dropped. ``workers`` > 1 runs that many collector processes in one consumer group
(:class:`CollectorPool`). ``/metrics`` shows the collector's counters in Prometheus text format.
"""

from __future__ import annotations

from ._collector import Collector
from ._config import CollectorConfig
from ._dlq import DeadLetters, FileDeadLetters, KafkaDeadLetters, dead_letter
from ._grpc import CollectorGrpcServer
from ._http import CollectorHttpServer
from ._kafka_source import KafkaSource, ensure_topics
from ._metrics import CollectorMetrics
from ._otlp import OtlpError, OtlpTooLarge, decode_request, otlp_spans
from ._otlp_intake import Answer, OtlpIntake, Outcome
from ._otlp_source import OtlpSource
from ._pool import CollectorPool
from ._records import KPIS_TOPIC, SPANS_DLQ_TOPIC, SPANS_TOPIC, Message, Rejection, decode
from ._source import Source
from ._spool_source import SpoolSource

__all__ = [
    "KPIS_TOPIC",
    "SPANS_DLQ_TOPIC",
    "SPANS_TOPIC",
    "Answer",
    "Collector",
    "CollectorConfig",
    "CollectorGrpcServer",
    "CollectorHttpServer",
    "CollectorMetrics",
    "CollectorPool",
    "DeadLetters",
    "FileDeadLetters",
    "KafkaDeadLetters",
    "KafkaSource",
    "Message",
    "OtlpError",
    "OtlpIntake",
    "OtlpSource",
    "OtlpTooLarge",
    "Outcome",
    "Rejection",
    "Source",
    "SpoolSource",
    "dead_letter",
    "decode",
    "decode_request",
    "ensure_topics",
    "otlp_spans",
]
