"""Trace-level results of the batch job: indirect dependencies by path, and the share of
the critical path each service holds.

Both need a whole trace at hand. Spark brings the few columns they read together by trace
(a window by trace: no shuffle when the spans are partitioned by trace already, as the
batch job's are) and sorts each trace by start and span id; Python reads the partitions as Arrow
batches (``mapInArrow``), one trace at a time over plain lists (``pipeline._trace_facts``
holds the rules), and sums per partition; the driver adds the partitions' sums up:

* **Paths.** Every call has a path: the services from the trace's first caller down to
  the callee (a SERVER span's path is its caller's plus its own service; a trace entered
  from an uninstrumented caller starts at the ``peer_service`` its SERVER span names; a
  call to an uninstrumented peer ends at the CLIENT span's ``peer_service``, as edges do).
  A path of three services or more is an indirect dependency; per window (of the call's
  start, as edges) each is counted with its calls and errors (the caller's view).
* **Critical-path share.** The critical path as the dashboard's trace view draws it
  (Jaeger's: the stretches the root waited on; one implementation,
  ``storage.critical_stretches``);
  each stretch's time goes to its span's service. Per window (of the trace's start) and
  service: the summed critical time, its share of all the window's critical time, and on
  how many traces' critical paths the service was.

Before and after (``Row`` objects grouped per trace, rebuilt as ``SpanRecord``s in the
workers): benchmarks/RESULTS.md, pipeline.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from storage import CriticalShare, DependencyPath

from ._trace_facts import (
    CLIENT,
    FACT_SCHEMA,
    MAX_DEPTH,
    OTHER,
    PATH,
    SERVER,
    TRACE_COLUMNS,
    TRACE_ORDER,
    partition_facts,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["MAX_DEPTH", "trace_results"]


def trace_results(
    spans: DataFrame, window_s: int
) -> tuple[list[DependencyPath], list[CriticalShare]]:
    """The paths (three services or more) and critical-path shares of ``spans``' windows."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window_us = window_s * 1_000_000
    # A window by trace: spans already partitioned by trace (the batch job's cache) are
    # not shuffled again; it sorts each trace oldest first and marks its first span.
    by_trace = Window.partitionBy("trace_id").orderBy(*TRACE_ORDER)
    facts = (
        _trace_columns(spans)
        .withColumn("first", F.row_number().over(by_trace) == 1)
        .sortWithinPartitions("trace_id", *TRACE_ORDER)  # as the window left them: no cost
        .select(*TRACE_COLUMNS)
        .mapInArrow(partial(partition_facts, window_us=window_us), FACT_SCHEMA)
        .collect()
    )
    totals: dict[tuple[str, int, tuple[str, ...]], tuple[int, int]] = {}
    for fact in facts:
        key = (fact["fact"], fact["window"], tuple(fact["names"]))
        a, b = totals.get(key, (0, 0))
        totals[key] = (a + fact["a"], b + fact["b"])
    paths = [
        DependencyPath(names, window, window_s, calls, errors)
        for (kind, window, names), (calls, errors) in totals.items() if kind == PATH
    ]  # fmt: skip
    critical = {(key[1], key[2][0]): v for key, v in totals.items() if key[0] != PATH}
    window_time: dict[int, int] = {}
    for (window, _), (critical_us, _) in critical.items():
        window_time[window] = window_time.get(window, 0) + critical_us
    shares = [
        CriticalShare(
            service, window, window_s, round(critical_us / 1000, 3),
            round(critical_us / window_time[window], 6) if window_time[window] else 0.0,
            on_path, critical[(window, "")][1],
        )
        for (window, service), (critical_us, on_path) in critical.items() if service
    ]  # fmt: skip
    paths.sort(key=lambda p: (p.window_start_us, p.services))
    shares.sort(key=lambda s: (s.window_start_us, s.service))
    return paths, shares


def _trace_columns(spans: DataFrame) -> DataFrame:
    """What the trace-level results read of ``spans`` (``TRACE_COLUMNS`` but ``first``)."""
    from pyspark.sql import functions as F

    def text(name: str) -> Column:
        return F.coalesce(F.col(name), F.lit("")).alias(name)

    kind = F.when(F.col("kind") == "SERVER", SERVER).when(F.col("kind") == "CLIENT", CLIENT)
    return spans.select(
        "trace_id",  # as it is: a frame partitioned by it stays so
        text("span_id"), text("parent_span_id"),
        kind.otherwise(OTHER).cast("tinyint").alias("kind"),
        text("service"), text("peer_service"), "start_us",
        (F.col("start_us") + F.col("duration_us")).alias("end_us"),
        F.coalesce(F.col("status") == "ERROR", F.lit(False)).alias("error"),
    )  # fmt: skip
