"""A decoded batch, and its delivery: spans and KPIs to the stores, the rest to the DLQ.

Delivery retries a failing store (or dead-letter queue) with exponential backoff until it
succeeds; records a store refused for good go to the dead-letter queue. Nothing is dropped:
a batch returns only once every record is stored or dead-lettered, or raises
:class:`Stopped` when shutdown comes first (the batch is then left uncommitted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callscope_contract import KpiSample, SpanRecord
from storage import AnalyticsStore, RejectedSpans, SpanStore

from ._config import CollectorConfig
from ._dlq import DeadLetters
from ._metrics import CollectorMetrics
from ._records import Message, Rejection, decode

__all__ = ["Batch", "Delivery", "Stopped"]

log = logging.getLogger("callscope.collector")


class Stopped(Exception):
    """Shutdown came while a batch was still failing to store: leave it uncommitted."""


@dataclass(slots=True)
class Batch:
    """One polled batch, decoded; ``mark`` is what the source commits once it is delivered."""

    mark: Any = None
    spans: dict[tuple[str, str], tuple[Message, SpanRecord]] = field(default_factory=dict)
    kpis: list[KpiSample] = field(default_factory=list)
    bad: list[tuple[Message, Rejection]] = field(default_factory=list)

    @classmethod
    def decode(cls, messages: list[Message], mark: Any) -> Batch:
        batch = cls(mark)
        for message in messages:
            result = decode(message)
            if isinstance(result, SpanRecord):  # a span repeated in a batch is written once
                batch.spans[(result.trace_id, result.span_id)] = (message, result)
            elif isinstance(result, Rejection):
                batch.bad.append((message, result))
            else:
                batch.kpis.append(result)
        return batch


class Delivery:
    """Stores batches for one source, retrying with backoff; safe to run on its own thread."""

    def __init__(
        self,
        name: str,
        config: CollectorConfig,
        spans: SpanStore,
        analytics: AnalyticsStore,
        dlq: DeadLetters,
        metrics: CollectorMetrics,
        stopping: threading.Event,
    ) -> None:
        self.name, self.config = name, config
        self.spans, self.analytics, self.dlq = spans, analytics, dlq
        self.metrics, self.stopping = metrics, stopping

    def deliver(self, batch: Batch) -> None:
        bad = list(batch.bad)
        pairs = list(batch.spans.values())
        records = [record for _, record in pairs]
        if records:
            rejected = self._retry("store spans", lambda: self.spans.write_spans(records)) or {}
            for i, reason in rejected.items():
                message = pairs[i][0]
                message.rejection = Rejection("STORE_REJECTED", reason)  # for OTLP's answer
                bad.append((message, message.rejection))
            self.metrics.add("stored_spans", len(records) - len(rejected), self.name)
        if batch.kpis:
            self._retry("store KPIs", lambda: self.analytics.write_kpis(batch.kpis))
            self.metrics.add("stored_kpis", len(batch.kpis), self.name)
        if bad:
            self._retry("dead-letter", lambda: self.dlq.send(bad))
            for _, rejection in bad:
                self.metrics.add("dlq", 1, rejection.code)

    def _retry(self, what: str, attempt: Callable[[], None]) -> dict[int, str] | None:
        """Run ``attempt`` until it succeeds; the records a store refused for good come back."""
        delay = self.config.backoff_initial_s
        failures = 0
        try:
            while True:
                try:
                    attempt()
                    return None
                except RejectedSpans as rejected:
                    return rejected.rejected
                except Exception as exc:  # StorageError and anything unexpected: retry
                    failures += 1
                    self.metrics.add("retries", 1, self.name)
                    self.metrics.set_backing_off(self.name, True)
                    if failures == 1 or failures % 10 == 0:
                        log.warning(
                            "callscope collector: %s failed (%s, attempt %d); pausing %s, "
                            "retrying in %.1fs", what, exc, failures, self.name, delay,
                        )  # fmt: skip
                    if self.stopping.wait(delay):
                        raise Stopped from exc
                    delay = min(delay * 2, self.config.backoff_max_s)
        finally:
            if failures:
                self.metrics.set_backing_off(self.name, False)
                log.info("callscope collector: %s recovered after %d retries", what, failures)
