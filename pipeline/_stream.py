"""The streaming job: per tumbling window, the dependency edges and each provider
instance's health, fed back.

Structured Streaming over the spans topic (Spark's own Kafka source): spans by event time
(``start_us``), a watermark for late spans (half a window, at most
:data:`MAX_DEFAULT_WATERMARK_S`), tumbling windows (60 s by default, down to 5 s
for tests). Each trace's spans are held per window and emitted once, when the watermark
passes the window's end (append mode; ``pipeline/_stream_windows.py``) -- when no span
comes, the job's own ticks move it (``pipeline/_stream_ticks.py``); the checkpoint
keeps offsets and window state, so a restarted job neither loses a window nor counts one
twice (a re-executed micro-batch writes the same keys again, which overwrite). Per closed
window: the batch job's dependency edges (service, instance and method level) and, per
(RPC service, instance), calls, errors, p50/p95/p99 -- written to every store (edges and
KPI rollups) and, with a registry, turned into routing weights (:func:`feed_back`, on
the p95).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from callscope_contract import SPANS_TOPIC, KpiSample, span_schema
from storage import open_analytics_store

from ._alarm_job import AlarmJob
from ._batch import PIPELINE_APP
from ._errors import PipelineError
from ._feedback import feed_back
from ._stream_ticks import Ticker, ensure_ticks_topic, ticks_topic
from ._stream_windows import closed_windows, window_traces
from ._weights import InstanceHealth, WeightPolicy

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.streaming import StreamingQuery

__all__ = ["MAX_DEFAULT_WATERMARK_S", "default_trigger_s", "default_watermark_s", "run_stream"]

MIN_WINDOW_S = 5
MAX_DEFAULT_WATERMARK_S = 10
"""The default watermark: half a window, at most this. A window's first span waits a window
plus the watermark (plus a micro-batch or two) for its edges, so the watermark is kept
short rather than proportional to the window: 70 s rather than 90 s for a first span at
60 s windows. It is how late a span may reach Kafka behind the newest one the job has
seen: spans are sent when they end (the exporter flushes every 0.2 s), so calls longer
than 10 s, or a process replaying its spool after a Kafka outage longer than that, miss
their window once other processes' spans have moved the watermark on -- Spark drops them
(``numRowsDroppedByWatermark`` in the query's progress), and the emitted window stays
without them. The collector still stores them: re-running ``pipeline batch`` over the
window rewrites its edges exactly. ``watermark_s`` (``--watermark``) trades the other way."""


def default_watermark_s(window_s: int) -> int:
    """The watermark of ``window_s`` windows unless one is given (see
    :data:`MAX_DEFAULT_WATERMARK_S`): 2 s at 5 s windows, 10 s at 60 s."""
    return min(window_s // 2, MAX_DEFAULT_WATERMARK_S)


def default_trigger_s(window_s: int) -> float:
    """Seconds between micro-batches unless given: a twentieth of a window, within 1 and 5 s.

    One after the other (Spark's default) costs a core: the job's JVM used ~0.9 of one on
    this 2-core machine at 200 spans/s in 60 s windows, for a lag of a few seconds that a
    window's wait (a window plus the watermark) dwarfs. A window's edges wait up to two
    intervals more (the batch that reads the span past the watermark, the one emitting)."""
    return min(5.0, max(1.0, window_s / 20))


def run_stream(
    spark: SparkSession,
    source: str,
    checkpoint: str,
    *,
    stores: Sequence[str] = (),
    registry: Any = None,
    window_s: int = 60,
    watermark_s: int | None = None,
    policy: WeightPolicy = WeightPolicy(),  # noqa: B008 (frozen)
    available_now: bool = False,
    trigger_s: float | None = None,
    alarms: AlarmJob | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> StreamingQuery:
    """Start the streaming job on ``kafka://HOST:PORT/TOPIC``; returns the running query.

    ``available_now``: process what the topic holds, then stop (tests, catch-up runs).
    ``trigger_s``: a micro-batch every so many seconds (0: one after the other);
    :func:`default_trigger_s` unless given.
    ``alarms``: rules evaluated on every closed window (``pipeline/_alarm_job.py``).
    """
    from pyspark.sql import functions as F

    if type(window_s) is not int or window_s < MIN_WINDOW_S:
        raise PipelineError("BAD_OPTION", f"window_s must be a whole number >= {MIN_WINDOW_S}")
    watermark_s = default_watermark_s(window_s) if watermark_s is None else watermark_s
    if type(watermark_s) is not int or watermark_s < 0:
        raise PipelineError("BAD_OPTION", "watermark_s must be a whole number >= 0")
    trigger_s = default_trigger_s(window_s) if trigger_s is None else trigger_s
    if not (isinstance(trigger_s, int | float) and 0 <= trigger_s <= window_s):
        raise PipelineError("BAD_OPTION", "trigger_s must be within 0 and the window")
    if not source.startswith("kafka://"):
        raise PipelineError("BAD_SOURCE", f"a stream reads kafka://HOST:PORT/TOPIC: {source!r}")
    bootstrap, _, topic = source.split("://", 1)[1].partition("/")
    topic = topic or SPANS_TOPIC
    ticks = ticks_topic(topic)  # the job's clock, when spans stop (_stream_ticks.py)
    ticking = ensure_ticks_topic(bootstrap, ticks, report)
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", f"{topic},{ticks}")
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "false")
        .load()
    )
    spans = raw.select(F.from_json(F.col("value").cast("string"), span_schema()).alias("s"))
    spans = spans.select("s.*").where(F.col("start_us").isNotNull())
    traces = window_traces(spans, window_s, watermark_s)
    sink = _WindowSink(list(stores), registry, window_s, policy, report, alarms)
    writer = (
        traces.writeStream.outputMode("append")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(sink)
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    elif trigger_s > 0:
        writer = writer.trigger(processingTime=f"{round(trigger_s * 1000)} milliseconds")
    report(f"streaming {source}: {window_s} s windows, {watermark_s} s watermark, "
           f"a micro-batch every {trigger_s:g} s")  # fmt: skip
    query = writer.start()
    if ticking and not available_now:
        _start_ticks(bootstrap, ticks, window_s, query, report)
    return query


def _start_ticks(
    bootstrap: str, topic: str, window_s: int, query: StreamingQuery,
    report: Callable[[str], None],
) -> None:  # fmt: skip
    """Ticks a window behind the clock, ten a window (at least one a second), while the
    query runs (``pipeline/_stream_ticks.py``)."""
    from kafka.errors import KafkaError

    def alive() -> bool:
        try:
            return bool(query.isActive)
        except Exception:  # the session is gone
            return False

    try:
        Ticker(bootstrap, topic, window_s, max(1.0, window_s / 10), alive, report)
    except KafkaError as err:
        report(f"ticks: cannot write {topic} ({err}); a quiet topic's last window waits")


class _WindowSink:
    """Runs on the driver for each micro-batch: the windows that closed in it."""

    def __init__(
        self,
        stores: list[str],
        registry: Any,
        window_s: int,
        policy: WeightPolicy,
        report: Callable[[str], None],
        alarms: AlarmJob | None = None,
    ) -> None:
        self.stores, self.registry, self.window_s = stores, registry, window_s
        self.policy, self.report, self.alarms = policy, report, alarms

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        closed = closed_windows(batch, self.window_s)
        rows = closed.health
        if not closed.windows:
            return
        samples = [self._sample(r) for r in rows]
        for url in self.stores:
            with open_analytics_store(url) as store:
                store.write_kpis(samples)
                store.write_dependencies(closed.edges)
        self.report(f"batch {batch_id}: {len(rows)} instance windows closed, "
                    f"{len(closed.edges)} edges")  # fmt: skip
        if self.alarms is not None:
            self.alarms.on_windows(samples, self.stores, self.report, resume=True)
        if self.registry is None:
            return
        by_window: dict[tuple[int, str], list[InstanceHealth]] = defaultdict(list)
        for r in rows:
            health = InstanceHealth(r["instance"], r["calls"], r["errors"], r["p95_ms"] or 0.0)
            by_window[(r["window_start_us"], r["service"])].append(health)
        analytics = open_analytics_store(self.stores[0]) if self.stores else None
        try:
            for (start_us, service), health_rows in sorted(by_window.items()):
                end_us = start_us + self.window_s * 1_000_000
                decisions = feed_back(
                    self.registry, service, health_rows,
                    analytics=analytics, policy=self.policy, now_us=end_us,
                )  # fmt: skip
                changed = [f"{d.instance} {d.previous}->{d.weight}" for d in decisions if d.changed]
                if changed:
                    self.report(f"weights of {service}: {', '.join(changed)}")
        finally:
            if analytics is not None:
                analytics.close()

    def _sample(self, r: dict[str, Any]) -> KpiSample:
        return KpiSample(
            service=r["service"], instance=r["instance"], method="*", role="provider",
            window_start_us=r["window_start_us"], window_s=self.window_s, count=r["calls"],
            errors=r["errors"], qps=round(r["calls"] / self.window_s, 3),
            latency_ms={q: round(float(r[f"{q}_ms"] or 0.0), 3) for q in ("p50", "p95", "p99")},
            app=PIPELINE_APP,
        )  # fmt: skip
