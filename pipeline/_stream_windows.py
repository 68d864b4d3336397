"""The streaming job's windows: each trace's spans held until the window closes, then the
batch job's own code over them -- the same calls, edges and latency, one piece of code.

Pairing a CLIENT span with the SERVER span it called needs both at hand. The stream keeps,
per tumbling window and trace, the spans' columns the calls need (Spark state, in the
checkpoint), and emits a window's traces all at once, when the watermark passes its end
(append mode). A call belongs to the window of its CLIENT span's start (as in the batch
job), but its SERVER span may start a moment later, in the next window: so a SERVER span
that starts within ``lag`` of its window's start is also kept in the previous window
(dropped again where it would count twice). On the emitted spans, :func:`closed_windows`
runs the batch job's :func:`~pipeline._calls.calls` and
:func:`~pipeline._aggregates.dependency_edges` (edges at service, instance and method
level), and :func:`instance_health`: per (RPC service, instance), the SERVER spans'
calls, errors and latency, which the routing weights are computed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage import DependencyEdge

from ._aggregates import _latency, _window, dependency_edges
from ._batch import _edge
from ._calls import SPAN_COLUMNS
from ._calls import calls as calls_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["ClosedWindows", "closed_windows", "instance_health", "window_traces"]


def window_traces(spans: DataFrame, window_s: int, watermark_s: int) -> DataFrame:
    """A stream of (``window_start_us``, ``trace_id``, ``spans``): each trace's spans per
    closed window (module docstring); ``spans`` is an array of :data:`SPAN_COLUMNS`."""
    from pyspark.sql import functions as F

    window_us = window_s * 1_000_000
    lag_us = min(window_us, max(watermark_s, 1) * 1_000_000)
    own = F.col("start_us") - F.col("start_us") % F.lit(window_us)
    early_server = (F.col("kind") == "SERVER") & (F.col("start_us") - own < F.lit(lag_us))
    # the event time of each copy: the span's start, or (the copy kept for the window
    # before) that window's last microsecond -- the watermark follows the real starts
    times = F.when(early_server, F.array(F.col("start_us"), own - 1)).otherwise(
        F.array(F.col("start_us"))
    )
    copies = spans.select(*SPAN_COLUMNS, F.explode(times).alias("event_us"))
    # A clock tick (``pipeline/_stream_ticks.py``: a time and no span) moves the watermark
    # and is no span: collect_list skips its null, and its group, spans none, is dropped
    # after the aggregate (a filter before the watermark would be pushed under it).
    span = F.when(F.col("span_id").isNotNull(), F.struct(*SPAN_COLUMNS))
    return (
        copies.select("*", F.timestamp_micros("event_us").alias("event_time"))
        .withWatermark("event_time", f"{watermark_s} seconds")
        .groupBy(F.window("event_time", f"{window_s} seconds"), "trace_id")
        .agg(F.collect_list(span).alias("spans"))
        .where(F.size("spans") > 0)
        .select(F.unix_micros(F.col("window.start")).alias("window_start_us"), "spans")
    )


def instance_health(spans: DataFrame, window_us: int) -> DataFrame:
    """Per window and (RPC service, instance): the SERVER spans' ``calls``, ``errors``,
    ``p50_ms``/``p95_ms``/``p99_ms`` (the RPC service is the span name's first part: the
    name the weights document is keyed by, not the process's ``service``)."""
    from pyspark.sql import functions as F

    served = spans.where(F.col("kind") == "SERVER").select(
        F.substring_index("name", "/", 1).alias("service"),
        F.coalesce("instance", F.lit("")).alias("instance"),
        "start_us", "duration_us", (F.col("status") == "ERROR").alias("error"),
    )  # fmt: skip
    return served.groupBy(_window(window_us), "service", "instance").agg(*_latency())


@dataclass
class ClosedWindows:
    """What one micro-batch closed: the windows, their instances' health, their edges."""

    windows: list[int]
    health: list[dict[str, Any]]
    edges: list[DependencyEdge]


def closed_windows(batch: DataFrame, window_s: int) -> ClosedWindows:
    """The health and the dependency edges of the windows in ``batch`` (of
    :func:`window_traces`), by the batch job's code."""
    from pyspark.sql import functions as F

    window_us = window_s * 1_000_000
    batch = batch.persist()
    try:
        windows = sorted(r[0] for r in batch.select("window_start_us").distinct().collect())
        if not windows:
            return ClosedWindows([], [], [])
        spans = (
            batch.select(F.explode("spans").alias("s"))
            .select("s.*")
            .dropDuplicates(["trace_id", "span_id"])  # a copy for the window before, or
        )  # the bus delivering a span twice
        closed = (F.col("start_us") - F.col("start_us") % F.lit(window_us)).isin(windows)
        health = [r.asDict() for r in instance_health(spans.where(closed), window_us).collect()]
        rows = dependency_edges(calls_of(spans).where(closed), window_us).collect()
        edges = [_edge(r.asDict(), window_s) for r in rows]
    finally:
        batch.unpersist()
    return ClosedWindows(windows, health, edges)
