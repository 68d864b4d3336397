"""The collector: sources -> validation -> batches -> stores, with a DLQ and its own metrics.

One worker per source (Kafka, spool, OTLP) -- a reader thread and a store thread, so
decoding overlaps storing -- sharing the stores; a reporter thread
writes the collector's counters to the analytics store as a ``process`` KPI sample every
``kpi_interval_s``. :meth:`Collector.stop` lets each worker finish (store and commit) the
batch in hand; a batch still failing to store is left uncommitted and comes again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from storage import (
    AnalyticsStore,
    SpanStore,
    StorageError,
    open_analytics_store,
    open_span_store,
)

from ._config import CollectorConfig
from ._dlq import DeadLetters, FileDeadLetters, KafkaDeadLetters
from ._grpc import CollectorGrpcServer
from ._http import CollectorHttpServer
from ._kafka_source import KafkaSource
from ._metrics import CollectorMetrics
from ._otlp_intake import OtlpIntake
from ._otlp_source import OtlpSource
from ._source import Source
from ._spool_source import SpoolSource
from ._worker import SourceWorker

__all__ = ["Collector"]

log = logging.getLogger("callscope.collector")


class Collector:
    def __init__(
        self,
        config: CollectorConfig,
        *,
        span_store: SpanStore | None = None,
        analytics: AnalyticsStore | None = None,
    ) -> None:
        self.config = config
        self.metrics = CollectorMetrics()
        self.stopping = threading.Event()
        self.span_store = span_store
        self.analytics = analytics
        self._owns_stores = span_store is None
        self.workers: list[SourceWorker] = []
        self.http: CollectorHttpServer | None = None
        self.grpc: CollectorGrpcServer | None = None
        self.intake: OtlpIntake | None = None
        self.dlq: DeadLetters | None = None
        self._reporter: threading.Thread | None = None

    @property
    def http_port(self) -> int | None:
        return self.http.port if self.http else None

    @property
    def grpc_port(self) -> int | None:
        return self.grpc.port if self.grpc else None

    def _open_stores(self) -> None:
        """Open the stores, waiting with backoff while the backend is not up yet."""
        delay = self.config.backoff_initial_s
        while self.span_store is None or self.analytics is None:
            try:
                if self.span_store is None:
                    self.span_store = open_span_store(self.config.store_url)
                if self.analytics is None:
                    url = self.config.analytics_url or self.config.store_url
                    self.analytics = open_analytics_store(url)
            except StorageError as exc:
                if not exc.retriable or self.stopping.is_set():
                    raise
                log.warning("callscope collector: store not ready (%s); retrying", exc)
                time.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max_s)

    def _sources(self) -> list[Source]:
        cfg = self.config
        sources: list[Source] = []
        if cfg.kafka_bootstrap:
            sources.append(
                KafkaSource(cfg.kafka_bootstrap, group_id=cfg.group_id,
                            spans_topic=cfg.spans_topic, kpis_topic=cfg.kpis_topic,
                            dlq_topic=cfg.dlq_topic, session_timeout_ms=cfg.session_timeout_ms)
            )  # fmt: skip
        if cfg.spool_dir:
            sources.append(SpoolSource(cfg.spool_dir))
        return sources

    def start(self) -> Collector:
        cfg = self.config
        if cfg.workers > 1:
            raise ValueError("a Collector is one process; run workers > 1 with CollectorPool")
        self._open_stores()
        assert self.span_store is not None and self.analytics is not None
        self.dlq = (
            KafkaDeadLetters(cfg.kafka_bootstrap, cfg.dlq_topic)
            if cfg.kafka_bootstrap
            else FileDeadLetters(cfg.dlq_file)
        )
        sources = self._sources()
        if cfg.otlp and (cfg.http_port is not None or cfg.grpc_port is not None):
            otlp = OtlpSource(
                cfg.otlp_max_waiting_requests, cfg.otlp_max_waiting_spans, cfg.otlp_batch_wait_s
            )
            sources += [otlp] * cfg.otlp_store_workers  # batches stored in parallel
            self.intake = OtlpIntake(otlp, cfg, self.metrics)
        if cfg.http_port is not None:
            self.http = CollectorHttpServer(
                self.metrics, self.intake, host=cfg.http_host, port=cfg.http_port,
                reuse_port=cfg.reuse_port,
            ).start()  # fmt: skip
        if self.intake is not None and cfg.grpc_port is not None:
            self.grpc = CollectorGrpcServer(
                self.intake, host=cfg.http_host, port=cfg.grpc_port, reuse_port=cfg.reuse_port
            ).start()
        for source in sources:
            worker = SourceWorker(source, cfg, self.span_store, self.analytics, self.dlq,
                                  self.metrics, self.stopping)  # fmt: skip
            self.workers.append(worker)
            worker.thread.start()
        self._reporter = threading.Thread(target=self._report, name="collector kpis", daemon=True)
        self._reporter.start()
        if self.grpc:
            log.info("callscope collector: OTLP/gRPC on %s:%d", cfg.http_host, self.grpc_port)
        log.info(
            "callscope collector: %s -> %s%s",
            ", ".join(w.source.name for w in self.workers) or "no source",
            cfg.store_url,
            f" (http {cfg.http_host}:{self.http_port})" if self.http else "",
        )
        return self

    def _report(self) -> None:
        while not self.stopping.wait(self.config.kpi_interval_s):
            self._write_own_kpis()

    def _write_own_kpis(self) -> None:
        try:
            assert self.analytics is not None
            self.analytics.write_kpis([self.metrics.kpi_sample()])
        except Exception as exc:  # our own KPIs never stall the data path
            log.debug("callscope collector: own KPIs not written: %s", exc)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Finish the batches in hand, commit them, and close everything."""
        self.stopping.set()
        deadline = time.monotonic() + timeout_s
        for worker in self.workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        if self.http:
            self.http.close()
        if self.grpc:
            self.grpc.close()
        if self.intake:
            self.intake.close()
        if self._owns_stores and self.analytics is not None:
            self._write_own_kpis()
        if self.dlq:
            self.dlq.close()
        if self._owns_stores:
            for store in (self.span_store, self.analytics):
                if store is not None:
                    store.close()

    def run_until_signalled(self) -> int:
        """Start, then stop gracefully on SIGTERM or SIGINT (the CLI's main loop); the exit
        status. With ``workers`` > 1, runs a :class:`CollectorPool` of processes instead."""
        if self.config.workers > 1:
            from ._pool import CollectorPool

            return CollectorPool(self.config).run_until_signalled()
        status = 0

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("callscope collector: signal %d, shutting down", signum)
            self.stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self.stopping.wait(1.0):
                if not any(w.thread.is_alive() for w in self.workers):
                    log.error("callscope collector: every source stopped")
                    status = 1
                    break
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return status
