"""One source's pipeline: a reader thread polls and decodes, a store thread delivers.

The reader owns the source (every poll, wait and commit happens on it): it gathers a batch
(size or time), decodes it, takes the source's :meth:`~Source.mark` and hands the batch to
the store thread through a bounded queue, so decoding the next batch overlaps storing this
one. The store thread delivers batches in order (see :mod:`._delivery`) and hands each
mark back; the reader commits marks in that order, so an offset never moves past a record
that is not yet stored or dead-lettered.

Back-pressure: at most ``source.prefetch + 1`` batches are in flight. Past that the reader
stops polling and waits for the store; while the store is slow or failing it calls
``source.wait`` (Kafka: every partition paused, the group membership kept).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from storage import AnalyticsStore, SpanStore

from ._config import CollectorConfig
from ._delivery import Batch, Delivery, Stopped
from ._dlq import DeadLetters
from ._metrics import CollectorMetrics
from ._records import Message
from ._source import Source

__all__ = ["SourceWorker"]

log = logging.getLogger("callscope.collector")
LAG_EVERY_S = 2.0
STORE_PATIENCE_S = 1.0  # how long the reader waits on the store before calling source.wait


class SourceWorker:
    def __init__(
        self,
        source: Source,
        config: CollectorConfig,
        spans: SpanStore,
        analytics: AnalyticsStore,
        dlq: DeadLetters,
        metrics: CollectorMetrics,
        stopping: threading.Event,
    ) -> None:
        self.source, self.config = source, config
        self.metrics, self.stopping = metrics, stopping
        self.delivery = Delivery(source.name, config, spans, analytics, dlq, metrics, stopping)
        self.thread = threading.Thread(target=self.run, name=f"collector {source.name}")
        self._storer = threading.Thread(target=self._store, name=f"collector {source.name} store")
        self._todo: queue.Queue[Batch | None] = queue.Queue()  # bounded by _in_flight
        self._done: queue.Queue[object] = queue.Queue()
        self._in_flight = 0
        self._lag_at = 0.0

    # -- the reader (owns the source) ---------------------------------------------------------
    def run(self) -> None:
        self._storer.start()
        try:
            while not self.stopping.is_set() and self._storer.is_alive():
                self._settle(block=False)
                if self._in_flight > self.source.prefetch:
                    self._settle(block=True)  # back-pressure: no polling until the store catches up
                    continue
                messages = self._gather()
                self._report_lag()
                if messages:
                    self._todo.put(Batch.decode(messages, self.source.mark()))
                    self._in_flight += 1
            self._todo.put(None)  # stopping: the store thread finishes the batches in hand
            while self._in_flight and (self._storer.is_alive() or not self._done.empty()):
                self._settle(block=True, keep_alive=False)
            self._storer.join()
        finally:
            self.source.close()

    def _settle(self, *, block: bool, keep_alive: bool = True) -> None:
        """Commit the marks of delivered batches, in order; optionally wait for one."""
        try:
            mark = self._done.get(timeout=STORE_PATIENCE_S) if block else self._done.get_nowait()
        except queue.Empty:
            if block and keep_alive:
                self.source.wait(0.1)  # the store is slow or failing: stay in the group
            return
        while True:
            self._in_flight -= 1
            try:
                self.source.commit(mark)
                self.metrics.add("batches", 1, self.source.name)
            except Exception:  # a rebalance: the batch will come again, idempotently
                self.metrics.add("commit_failures", 1, self.source.name)
            try:
                mark = self._done.get_nowait()
            except queue.Empty:
                return

    def _gather(self) -> list[Message]:
        cfg = self.config
        out: list[Message] = []
        wait_s = cfg.batch_wait_s if self.source.batch_wait_s is None else self.source.batch_wait_s
        deadline = time.monotonic() + wait_s
        while len(out) < cfg.batch_size and not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 and (out or wait_s > 0):
                break
            # A zero wait takes what is there as soon as there is something ("group commit").
            timeout = min(left, 0.5) if wait_s > 0 else 0.5
            out += self.source.poll(cfg.batch_size - len(out), timeout)
            if wait_s == 0 and out:
                break
        self.metrics.add("consumed", len(out), self.source.name)
        return out

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at >= LAG_EVERY_S:
            self._lag_at = now
            try:
                self.metrics.set_lag(self.source.name, self.source.lag())
            except Exception as exc:  # lag is informative only
                log.debug("callscope collector: no lag for %s: %s", self.source.name, exc)

    # -- the store thread ---------------------------------------------------------------------
    def _store(self) -> None:
        while (batch := self._todo.get()) is not None:
            try:
                self.delivery.deliver(batch)
            except Stopped:
                return  # this batch and the ones behind it stay uncommitted
            except BaseException:
                log.exception("callscope collector: %s store thread failed", self.source.name)
                raise
            self._done.put(batch.mark)
