"""Collector settings; the CLI fills them from options, tests and embedders from code."""

from __future__ import annotations

from dataclasses import dataclass

from callscope_contract import KPIS_TOPIC, SPANS_DLQ_TOPIC, SPANS_TOPIC
from storage import DEFAULT_URL

__all__ = ["CollectorConfig"]


@dataclass
class CollectorConfig:
    """Where to read, where to write, and how to batch and back off.

    Sources: Kafka when ``kafka_bootstrap`` is set, the spool root ``spool_dir`` (embedded
    mode), and the OTLP receivers: OTLP/HTTP when ``http_port`` is not None (``/metrics`` is
    served on the same port; 0 picks a free port), OTLP/gRPC when ``grpc_port`` is not None.
    The ``otlp_*`` limits bound one request (bytes as received, bytes once decompressed,
    spans) and all requests in flight (bytes held, requests and spans waiting for the store);
    ``otlp_ack_timeout_s`` is how long a request waits for its spans to be stored before it
    is answered 503 / UNAVAILABLE (the exporter retries; the write is idempotent).
    Dead letters go to ``callscope.spans.dlq`` with Kafka, else to ``dlq_file``.
    ``workers`` > 1 runs that many collector processes in one consumer group
    (:class:`CollectorPool`; all serve OTLP on shared ports, the first reads the spool).
    """

    store_url: str = DEFAULT_URL
    analytics_url: str | None = None  # default: store_url
    kafka_bootstrap: str | None = None
    group_id: str = "callscope-collector"
    spans_topic: str = SPANS_TOPIC
    kpis_topic: str = KPIS_TOPIC
    dlq_topic: str = SPANS_DLQ_TOPIC
    session_timeout_ms: int = 10_000
    spool_dir: str | None = None
    dlq_file: str = "callscope-dlq.jsonl"
    http_host: str = "127.0.0.1"
    http_port: int | None = 4318
    otlp: bool = True
    grpc_port: int | None = None
    otlp_max_body_bytes: int = 16 << 20
    otlp_max_decompressed_bytes: int = 32 << 20
    otlp_max_spans: int = 20_000
    otlp_max_buffered_bytes: int = 256 << 20
    otlp_max_waiting_requests: int = 64
    otlp_max_waiting_spans: int = 50_000
    otlp_batch_wait_s: float = 0.0
    otlp_store_workers: int = 2  # OTLP batches written at once (senders wait on the store)
    reuse_port: bool = False  # bind the OTLP ports with SO_REUSEPORT (a pool's workers share them)
    batch_size: int = 2000
    batch_wait_s: float = 0.2
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    kpi_interval_s: float = 10.0
    otlp_ack_timeout_s: float = 10.0
    workers: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        for name in ("otlp_max_body_bytes", "otlp_max_decompressed_bytes", "otlp_max_spans",
                     "otlp_max_buffered_bytes", "otlp_max_waiting_requests",
                     "otlp_max_waiting_spans", "otlp_store_workers"):  # fmt: skip
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer")
        if not 0 <= self.otlp_batch_wait_s < 60:
            raise ValueError("otlp_batch_wait_s must be within 0..60 seconds")
        if not 0 < self.otlp_ack_timeout_s < float("inf"):
            raise ValueError("otlp_ack_timeout_s must be a positive finite number of seconds")
        if self.backoff_initial_s <= 0 or self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff must be positive and its maximum at least its start")
