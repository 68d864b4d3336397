"""The batch job's aggregates over calls and spans, per window, as DataFrames.

Windows are aligned on the epoch (``start_us - start_us % window_us``), so a window
computed twice, by any run, gets the same key and overwrites itself in the store.
Percentiles are Spark's ``percentile_approx`` (Greenwald-Khanna), whose rank error is
at most ``1 / PERCENTILE_ACCURACY`` of the window's calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["PERCENTILE_ACCURACY", "dependency_edges", "latency_rollups"]

PERCENTILE_ACCURACY = 10_000
"""``percentile_approx``'s accuracy: a reported pXX is within 0.01% of ranks of the true one."""

LEVELS = {
    "service": ("caller", "callee"),
    "instance": ("caller", "callee", "caller_instance", "callee_instance"),
    "method": ("caller", "callee", "method"),
}


def _window(window_us: int) -> Column:
    from pyspark.sql import functions as F

    return (F.col("start_us") - F.col("start_us") % F.lit(window_us)).alias("window_start_us")


def _latency() -> list[Column]:
    """count, errors, p50/p95/p99 and the mean, in ms, of ``duration_us``."""
    from pyspark.sql import functions as F

    ms = F.col("duration_us") / 1000.0
    q = F.percentile_approx(ms, [0.5, 0.95, 0.99], PERCENTILE_ACCURACY)
    return [
        F.count(F.lit(1)).alias("calls"),
        F.sum(F.col("error").cast("long")).alias("errors"),
        q[0].alias("p50_ms"),
        q[1].alias("p95_ms"),
        q[2].alias("p99_ms"),
        F.avg(ms).alias("avg_ms"),
    ]


def dependency_edges(calls: DataFrame, window_us: int) -> DataFrame:
    """Calls, errors and latency per edge, at every level of :data:`LEVELS` in one pass
    (grouping sets); the ``level`` column names each row's, and the columns a level does
    not group by are empty."""
    from pyspark.sql import functions as F

    columns = ("caller", "callee", "caller_instance", "callee_instance", "method")
    sets = [[F.col("window_start_us"), *map(F.col, keys)] for keys in LEVELS.values()]
    grouped = calls.select(_window(window_us), *columns, "duration_us", "error").groupingSets(
        sets, "window_start_us", *columns
    )
    level = F.lit(None)
    for name, keys in LEVELS.items():
        unused = [c for c in columns if c not in keys]
        level = F.when(_grouping_of(unused, columns), F.lit(name)).otherwise(level)
    return (
        grouped.agg(*_latency(), F.grouping_id().alias("gid"))
        .select("*", level.alias("level"))
        .drop("gid")
        .fillna("", list(columns[2:]))
    )


def _grouping_of(unused: list[str], columns: tuple[str, ...]) -> Column:
    """True for the rows of the grouping set that leaves out exactly ``unused``."""
    from pyspark.sql import functions as F

    bits = sum(1 << (len(columns) - 1 - columns.index(c)) for c in unused)
    return F.col("gid") == F.lit(bits)


def latency_rollups(spans: DataFrame, window_us: int) -> DataFrame:
    """Per service and window, the SERVER spans' latency: per method, and ``*`` for all
    (one pass: grouping sets)."""
    from pyspark.sql import functions as F

    served = spans.where(F.col("kind") == "SERVER").select(
        _window(window_us), "service", F.col("name").alias("method"), "duration_us",
        (F.col("status") == "ERROR").alias("error"),
    )  # fmt: skip
    keys = ("window_start_us", "service")
    sets = [[*map(F.col, keys), F.col("method")], list(map(F.col, keys))]
    grouped = served.groupingSets(sets, *keys, "method").agg(*_latency())
    # A span's name is never null (read_spans drops such rows): null here is the "all" set.
    return grouped.fillna("*", ["method"])
