"""The export pipeline: ended spans → bounded queue → export thread → exporter, or the spool.

The business call only appends to a deque. The export thread encodes spans,
collects KPI windows, and delivers; what the exporter cannot take goes to the
spool (in order: while the spool has a backlog, new records queue behind it),
and the backlog is replayed when the exporter answers again. Beyond the spool's
cap, and beyond the queue's bound, records are dropped and counted, never
silently: the counters ride on every process KPI sample, and a log line names
them. The thread runs with OpenTelemetry instrumentation suppressed, so the
exporter's own calls are never traced.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from callscope_contract import KPIS_TOPIC, SPANS_TOPIC

from ._exit import leave_signals_to_the_main_thread
from ._exporters import Exporter, Record
from ._kpi import KpiRecorder, ProcessStats
from ._native import hotpath
from ._span import Ended, Span, encode_ended, encode_span, sync_clock
from ._spool import Spool

__all__ = ["ExportPipeline"]

log = logging.getLogger("callscope.instrument")

_new_record = tuple.__new__
_RETRY_MIN_S = 0.5
_RETRY_MAX_S = 5.0


class ExportPipeline:
    """A :class:`~instrument.SpanSink` that never blocks the caller; one thread does the rest."""

    def __init__(
        self,
        exporter: Exporter,
        *,
        spool: Spool | None = None,
        spans_topic: str = SPANS_TOPIC,
        kpis_topic: str = KPIS_TOPIC,
        queue_size: int = 65536,
        flush_interval_s: float = 0.2,
        batch_size: int = 4096,
        recorder: KpiRecorder | None = None,
        kpi_interval_s: float = 10.0,
        process_stats: ProcessStats | None = None,
        exporter_is_spool: bool = False,
        retry_max_s: float = _RETRY_MAX_S,
    ) -> None:
        self.exporter = exporter
        self._undelivered_reason = (
            "dropped_spool_full" if exporter_is_spool else "dropped_undelivered"
        )
        self.spool = spool
        self.spans_topic = spans_topic
        self.kpis_topic = kpis_topic
        self.recorder = recorder
        self.process_stats = process_stats
        self.kpi_interval_s = kpi_interval_s
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self._queue: collections.deque[Span | Ended] = collections.deque()
        self._max = queue_size
        self._wake_at = batch_size
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._asked = 0  # flush requests made
        self._done = 0  # flush requests served
        self._stopping = False
        self._backlog = spool is not None and spool.pending()
        self._retry_at = 0.0
        self._retry_s = _RETRY_MIN_S
        self._retry_max_s = retry_max_s
        self._next_kpi = time.monotonic() + kpi_interval_s
        self._reported_drops = 0
        self._next_report = 0.0
        self._drop_lock = threading.Lock()
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "spans_exported",
                "kpis_exported",
                "spooled",
                "replayed",
                "respooled",
                "dropped",
                "dropped_queue_full",
                "dropped_spool_full",
                "dropped_undelivered",
                "dropped_encode_error",
            ),
            0,
        )
        self._thread = threading.Thread(target=self._run, name="callscope-export", daemon=True)
        self._thread.start()

    # -- the hot path ---------------------------------------------------------
    def on_end(self, span: Span | Ended) -> bool:
        """Queue an ended span, or an :data:`~instrument._span.Ended` tuple (what our
        interceptors queue); ``False`` when the queue is full (an exportable span is then
        counted as dropped; an interceptor closes the call's KPI counters itself)."""
        queue = self._queue
        if len(queue) < self._max:
            queue.append(span)
            if len(queue) == self._wake_at:
                self._wake.set()
            return True
        if (
            span[0] is not None
            if span.__class__ is tuple
            else span.sampled or span.status == "ERROR"  # type: ignore[union-attr]
        ):
            self._count_drop("dropped_queue_full", 1)
        return False

    # -- control ----------------------------------------------------------------
    def force_flush(self, timeout: float = 30.0) -> bool:
        """Ship everything queued (and the spool backlog if the exporter is up); wait for it."""
        if not self._thread.is_alive():
            return False
        with self._cond:
            self._asked += 1
            ticket = self._asked
            self._wake.set()
            return self._cond.wait_for(lambda: self._done >= ticket, timeout)

    def emit_kpis_now(self, timeout: float = 30.0) -> bool:
        """Close the KPI window now instead of waiting for the interval (tests, exit)."""
        self._next_kpi = 0.0
        return self.force_flush(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Emit the last KPI window, flush, stop the thread, close exporter and spool."""
        if self._stopping:
            return
        self.emit_kpis_now(timeout)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        self._report_drops()
        with contextlib.suppress(Exception):
            self.exporter.flush(min(timeout, 5.0))
            self.exporter.close()
        if self.spool is not None:
            if self.spool.pending():
                self._report_left(self.spool)
            self.spool.close()

    @property
    def backlog(self) -> bool:
        """Whether records wait in the spool for the exporter."""
        return self._backlog

    @staticmethod
    def _report_left(spool: Spool) -> None:
        """One line for what the exporter never took: where it is, how it will go out."""
        log.warning(
            "callscope: undelivered records stay in the spool %s (%d bytes); the next process "
            "of this service replays them when it starts, or now: callscope spool replay %s "
            "--kafka HOST:PORT",
            spool.directory, spool.size_bytes, spool.directory,
        )  # fmt: skip

    # -- the export thread ------------------------------------------------------
    def _run(self) -> None:
        leave_signals_to_the_main_thread()
        otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        while not self._stopping:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            with self._cond:
                ticket = self._asked
            try:
                sync_clock()
                self._ship_spans()
                if time.monotonic() >= self._next_kpi:
                    self._ship_kpis()
                if self._backlog and (ticket != self._done or time.monotonic() >= self._retry_at):
                    self._replay(deadline=time.monotonic() + 2.0)
                if ticket != self._done:
                    self.exporter.flush(5.0)
            except Exception:  # telemetry never breaks the host (STYLE §6)
                log.exception("callscope: the export thread failed a round; continuing")
            self._report_drops()
            with self._cond:
                self._done = ticket
                self._cond.notify_all()

    def _ship_spans(self) -> None:
        queue = self._queue
        topic = self.spans_topic
        recorder = self.recorder
        popleft = queue.popleft
        left = len(queue)  # only what is queued now: KPIs and flushes must not starve
        records_of = hotpath.records_of if hotpath is not None else None
        stats = recorder._stats if recorder is not None else None
        while left > 0:
            n = min(left, self.batch_size)
            left -= n
            spans = [popleft() for _ in range(n)]
            batch: list[Record] = []
            if records_of is not None:  # the Ended tuples, in C; the rest below
                batch, spans = records_of(spans, topic, Record, stats)
            if recorder is not None:
                recorder.end_spans(spans)  # the calls queued only for their KPIs, too
            for span in spans:
                try:  # a Record without its Python-level __new__: one frame less per span
                    if span.__class__ is tuple:
                        if span[0] is None:  # queued for its KPIs only
                            continue
                        record = (topic, span[1].encode(), encode_ended(span))
                    elif span.sampled or span.status == "ERROR":  # type: ignore[union-attr]
                        record = (topic, span.trace_hex.encode(), encode_span(span))  # type: ignore[union-attr,arg-type]
                    else:
                        continue
                    batch.append(_new_record(Record, record))
                except Exception:
                    self._count_drop("dropped_encode_error", 1)
                    log.warning("callscope: could not encode %r; dropped", span, exc_info=True)
            self._deliver(batch, "spans_exported")

    def _ship_kpis(self) -> None:
        self._next_kpi = time.monotonic() + self.kpi_interval_s
        recorder = self.recorder
        if recorder is None:
            return
        reading = self.process_stats.read() if self.process_stats else None
        samples = recorder.collect(reading)
        if self.process_stats is not None:
            start_us, window_s = recorder.last_window
            samples.append(
                self.process_stats.sample(
                    recorder.app, recorder.app_instance, start_us, window_s,
                    self.counters, reading,
                )
            )  # fmt: skip
        topic = self.kpis_topic
        self._deliver(
            [Record(topic, s.service.encode(), s.to_json()) for s in samples], "kpis_exported"
        )

    def _deliver(self, records: Sequence[Record], counter: str) -> None:
        if not records:
            return
        spool = self.spool
        if spool is None:
            failed = self._export(records)
            self.counters[counter] += len(records) - len(failed)
            if failed:  # no spool behind this exporter (or it is the spool, and full)
                self._count_drop(self._undelivered_reason, len(failed))
            return
        if self._backlog:  # keep the order: new records go behind the backlog
            self._to_spool(records)
            if time.monotonic() >= self._retry_at:
                self._replay(deadline=time.monotonic() + 2.0)
            return
        failed = self._export(records)
        self.counters[counter] += len(records) - len(failed)
        if failed:
            self._exporter_down(len(failed))
            self._to_spool(failed)

    def _export(self, records: Sequence[Record]) -> Sequence[Record]:
        try:
            return self.exporter.export(records)
        except Exception:
            log.warning("callscope: exporter raised; treating the batch as undelivered",
                        exc_info=True)  # fmt: skip
            return records

    def _to_spool(self, records: Sequence[Record]) -> None:
        assert self.spool is not None
        written = self.spool.append(records)
        self.counters["spooled"] += written
        self._backlog = True
        if written < len(records):
            self._count_drop("dropped_spool_full", len(records) - written)

    def _exporter_down(self, undelivered: int) -> None:
        if not self._backlog:
            log.warning(
                "callscope: exporter unreachable; %d records go to the spool %s until it is back",
                undelivered, self.spool.directory if self.spool else None,
            )  # fmt: skip
        self._retry_at = time.monotonic() + self._retry_s
        self._retry_s = min(self._retry_s * 2, self._retry_max_s)

    def _replay(self, deadline: float) -> None:
        """Send the spool's backlog, oldest first, until it is empty or the exporter fails."""
        spool = self.spool
        assert spool is not None
        replayed = 0
        while time.monotonic() < deadline:
            entries = spool.read(self.batch_size)
            if not entries:
                self._backlog = False
                self._retry_s = _RETRY_MIN_S
                log.info("callscope: exporter is back; the spool backlog is delivered")
                break
            failed = self._export(entries)
            if len(failed) == len(entries):
                spool.replay.rewind()  # nothing went out: the same batch again next time
                self._exporter_down(len(failed))
                break
            # What Kafka acknowledged is never sent again (a broker still waking up refuses
            # some partitions and takes others; rewinding the batch duplicated the others).
            # The refused records go back to the spool's tail: later, not in order, once.
            spool.commit()
            replayed += len(entries) - len(failed)
            if failed:
                self._respool(failed)
                self._exporter_down(len(failed))
                break
        self.counters["replayed"] += replayed

    def _respool(self, records: Sequence[Record]) -> None:
        assert self.spool is not None
        written = self.spool.append(records)
        self.counters["respooled"] += written
        if written < len(records):
            self._count_drop("dropped_spool_full", len(records) - written)

    # -- drops ------------------------------------------------------------------
    def _count_drop(self, reason: str, n: int) -> None:
        with self._drop_lock:
            self.counters[reason] += n
            if reason != "dropped":
                self.counters["dropped"] += n

    def _report_drops(self) -> None:
        dropped = self.counters["dropped"]
        now = time.monotonic()
        if dropped != self._reported_drops and (now >= self._next_report or self._stopping):
            self._next_report = now + self.kpi_interval_s
            log.error(
                "callscope: dropped %d records so far (queue full %d, spool full %d, "
                "undelivered %d, unencodable %d)",
                dropped, self.counters["dropped_queue_full"], self.counters["dropped_spool_full"],
                self.counters["dropped_undelivered"], self.counters["dropped_encode_error"],
            )  # fmt: skip
            self._reported_drops = dropped
