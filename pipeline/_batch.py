"""The batch job: for each window of a time range, the dependency graph at three levels,
the top callers of every service and the latency of every service and method, written
through each store's ``AnalyticsStore``.

Windows are aligned on the epoch, so the range is widened to whole windows; re-running a
window writes the same keys, which overwrite what the last run wrote (idempotent).

The spans are read once: the columns the job needs (``SPAN_COLUMNS``), shuffled by trace
and deduplicated (``read_spans``), cached. Calls pair within those partitions (no second
shuffle: see ``_BATCH_CONF``); the edges of the three levels come from one
grouping-sets aggregate, the top callers from its service-level rows, the latency
rollups from one more over the SERVER spans; the trace-level results group the cached
spans by trace.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callscope_contract import KpiSample
from storage import (
    Alarm,
    CallerStat,
    CriticalShare,
    DependencyEdge,
    DependencyPath,
    open_analytics_store,
)

from ._aggregates import LEVELS, dependency_edges, latency_rollups
from ._calls import SPAN_COLUMNS
from ._calls import calls as calls_of
from ._errors import PipelineError
from ._paths import trace_results
from ._read import read_spans
from ._window import TimeLike, Window, window

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ._alarm_job import AlarmJob

__all__ = ["PIPELINE_APP", "BatchResult", "run_batch"]

PIPELINE_APP = "callscope-pipeline"
"""The ``app`` of the KPI rollups the pipeline writes (so they never pass for a process's)."""

Report = Callable[[str], None]


@dataclass
class BatchResult:
    """What one batch run computed (and wrote), window by window."""

    window: Window
    window_s: int
    spans: int = 0
    calls: int = 0
    edges: list[DependencyEdge] = field(default_factory=list)
    callers: list[CallerStat] = field(default_factory=list)
    latency: list[KpiSample] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    paths: list[DependencyPath] = field(default_factory=list)
    critical: list[CriticalShare] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        by_level = {lvl: sum(e.level == lvl for e in self.edges) for lvl in LEVELS}
        levels = ", ".join(f"{n} {lvl}" for lvl, n in by_level.items())
        return (
            f"{self.spans} spans, {self.calls} calls -> edges: {levels}; "
            f"{len(self.callers)} top callers; {len(self.latency)} latency rollups; "
            f"{len(self.paths)} call paths; {len(self.critical)} critical-path shares "
            f"in {self.seconds:.1f} s"
        )


def run_batch(
    spark: SparkSession,
    source: str,
    start: TimeLike,
    end: TimeLike,
    *,
    stores: Sequence[str] = (),
    window_s: int = 3600,
    top_n: int = 10,
    partitions: int | None = None,
    alarms: AlarmJob | None = None,
    report: Report = lambda line: None,
) -> BatchResult:
    """Compute the range's windows from ``source`` and write them to every store URL;
    ``alarms``: rules evaluated on each window's service and method latency rollups."""
    if type(window_s) is not int or window_s < 1:
        raise PipelineError("BAD_OPTION", f"window_s must be a whole number >= 1, not {window_s}")
    if type(top_n) is not int or not 1 <= top_n <= 1000:
        raise PipelineError("BAD_OPTION", f"top_n must be within 1..1000, not {top_n}")
    began = time.monotonic()
    window_us = window_s * 1_000_000
    asked = window(start, end)
    span = Window(
        asked.start_us - asked.start_us % window_us,
        -(-asked.end_us // window_us) * window_us,
    )
    if span != asked:
        report(f"windows of {window_s} s: the range widens to [{span.start_us}, {span.end_us}) µs")
    ui = spark.sparkContext.uiWebUrl
    report(f"Spark UI: {ui}" if ui else "Spark UI: off (spark.ui.enabled=false)")
    report(f"reading spans from {source}")
    result = BatchResult(span, window_s)
    with _tuned(spark):
        spans = read_spans(
            spark, source, span.start_us, span.end_us, partitions=partitions, columns=SPAN_COLUMNS
        ).cache()
        try:
            result.spans = spans.count()  # the one pass over the source
            report(f"{result.spans} spans; pairing calls, computing the dependency graph")
            edges = [r.asDict() for r in dependency_edges(calls_of(spans), window_us).collect()]
            result.edges = [_edge(row, window_s) for row in edges]
            result.calls = sum(e.calls for e in result.edges if e.level == "service")
            result.callers = _top_callers(edges, window_s, top_n)
            report(f"{result.calls} calls; latency per service and method")
            rows = latency_rollups(spans, window_us).collect()
            result.latency = [_rollup(row.asDict(), window_s) for row in rows]
            report("call paths and critical-path shares")
            result.paths, result.critical = trace_results(spans, window_s)
        finally:
            spans.unpersist()
    for url in stores:
        report(f"writing to {url}")
        with open_analytics_store(url) as analytics:
            analytics.write_dependencies(result.edges)
            analytics.write_top_callers(result.callers)
            analytics.write_kpis(result.latency)
            analytics.write_paths(result.paths)
            analytics.write_critical_shares(result.critical)
            analytics.refresh()
    if alarms is not None:
        result.alarms = alarms.on_windows(result.latency, stores, report)
    result.seconds = time.monotonic() - began
    report(result.summary())
    return result


_BATCH_CONF = {
    # A cached frame keeps the partitioning it was built with (by trace), so Spark knows
    # that what groups by trace and more (the calls' window) needs no shuffle.
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "false",
    # percentile_approx's sketches per group stay in a hash map up to this many groups
    # per task (Spark's 128 is passed by the edges of a few windows; past it, the rows
    # are sorted instead: twice the aggregate's time).
    "spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "8192",
    # The cached spans are read three times, then dropped: compressing them cost more
    # CPU (2 s a million spans) than the scans saved; the price is memory (~170 MB a
    # million spans, spilled to disk if it does not fit).
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
}


@contextmanager
def _tuned(spark: SparkSession) -> Iterator[None]:
    """Within: ``_BATCH_CONF`` (the session's own settings are restored after: a user's
    session is theirs)."""
    before = {key: spark.conf.get(key, None) for key in _BATCH_CONF}
    for key, value in _BATCH_CONF.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _top_callers(edges: list[dict[str, Any]], window_s: int, top_n: int) -> list[CallerStat]:
    """Per callee service and window, its ``top_n`` callers by calls (ties by name): the
    service-level edges already hold each caller's calls, errors and latency."""
    ranked: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in edges:
        if row["level"] == "service":
            ranked.setdefault((row["window_start_us"], row["callee"]), []).append(row)
    return [
        _caller(row, window_s)
        for group in ranked.values()
        for row in sorted(group, key=lambda row: (-row["calls"], row["caller"]))[:top_n]
    ]


def _ms(value: Any) -> float:
    return 0.0 if value is None or not math.isfinite(value) else round(float(value), 3)


def _edge(row: dict[str, Any], window_s: int) -> DependencyEdge:
    return DependencyEdge(
        caller=row["caller"], callee=row["callee"], window_start_us=row["window_start_us"],
        window_s=window_s, calls=row["calls"], errors=row["errors"], p99_ms=_ms(row["p99_ms"]),
        p50_ms=_ms(row["p50_ms"]), p95_ms=_ms(row["p95_ms"]),
        caller_instance=row.get("caller_instance") or "",
        callee_instance=row.get("callee_instance") or "", method=row.get("method") or "",
    )  # fmt: skip


def _caller(row: dict[str, Any], window_s: int) -> CallerStat:
    return CallerStat(
        service=row["callee"], caller=row["caller"], window_start_us=row["window_start_us"],
        window_s=window_s, calls=row["calls"], errors=row["errors"],
        avg_ms=_ms(row["avg_ms"]), p99_ms=_ms(row["p99_ms"]),
    )  # fmt: skip


def _rollup(row: dict[str, Any], window_s: int) -> KpiSample:
    quantiles = {q: _ms(row[f"{q}_ms"]) for q in ("p50", "p95", "p99")}
    return KpiSample(
        service=row["service"], instance="", method=row["method"], role="provider",
        window_start_us=row["window_start_us"], window_s=window_s, count=row["calls"],
        errors=row["errors"], qps=round(row["calls"] / window_s, 3), latency_ms=quantiles,
        app=PIPELINE_APP,
    )  # fmt: skip
