"""Spans into calls: one row per RPC call, caller and callee named (Jaeger's dependency rule).

A CLIENT span is one call its service made. Its callee is the SERVER span whose parent
it is, when that side is traced too (its ``service`` and ``instance`` name the callee);
otherwise the callee is uninstrumented (a database, a third-party API) and the CLIENT
span's ``peer_service`` and ``peer_instance`` name it. A SERVER span with no CLIENT
parent was called by an uninstrumented caller; when it knows its caller
(``peer_service``), that is a call too. The latency of a call is the caller's view
(the CLIENT span's duration) wherever there is one.

Columns: ``caller``, ``caller_instance``, ``callee``, ``callee_instance``, ``method``,
``start_us``, ``duration_us``, ``error`` (boolean).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["CALL_COLUMNS", "SPAN_COLUMNS", "calls"]

SPAN_COLUMNS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service", "instance",
    "peer_service", "peer_instance", "start_us", "duration_us", "status",
)  # fmt: skip
"""What the calls (and the trace-level results) need of a span."""

CALL_COLUMNS = (
    "caller", "caller_instance", "callee", "callee_instance", "method",
    "start_us", "duration_us", "error",
)  # fmt: skip


def calls(spans: DataFrame) -> DataFrame:
    """Every call the spans record, once (see the module docstring).

    No join: each CLIENT span and the SERVER spans it is the parent of share a link key
    (the client's ``span_id``, the servers' ``parent_span_id``), so one window over
    (``trace_id``, link) -- one sort, and no shuffle when the spans are partitioned by
    trace, as ``read_spans`` leaves them -- hands every span its partners."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    kind, parent = F.col("kind"), F.col("parent_span_id")
    is_client, is_server = kind == "CLIENT", kind == "SERVER"
    link = Window.partitionBy("trace_id", "link")
    # At most one traced callee per CLIENT span (a duplicate SERVER span must not double it).
    child = F.first(
        F.when(is_server & (parent != ""), F.struct("service", "instance")), ignorenulls=True
    )
    paired = (
        spans.where(is_client | is_server)
        .select(
            "kind", "service", "instance", "peer_service", "peer_instance", "name",
            "start_us", "duration_us", "status", "trace_id", "parent_span_id",
            F.when(is_client, F.col("span_id")).otherwise(parent).alias("link"),
        )
        .select(
            "*",
            child.over(link).alias("child"),
            F.max(is_client).over(link).alias("client_parent"),
        )
    )  # fmt: skip
    from_outside = is_server & (F.coalesce(F.col("peer_service"), F.lit("")) != "")
    from_outside = from_outside & ~F.col("client_parent")
    both = paired.where(is_client | from_outside).select(
        F.when(is_client, F.col("service")).otherwise(F.col("peer_service")).alias("caller"),
        F.when(is_client, F.col("instance"))
        .otherwise(F.col("peer_instance"))
        .alias("caller_instance"),
        F.when(is_client, F.coalesce(F.col("child.service"), F.col("peer_service")))
        .otherwise(F.col("service"))
        .alias("callee"),
        F.when(is_client, F.coalesce(F.col("child.instance"), F.col("peer_instance")))
        .otherwise(F.col("instance"))
        .alias("callee_instance"),
        F.col("name").alias("method"),
        "start_us",
        "duration_us",
        (F.col("status") == "ERROR").alias("error"),
    )
    return both.where(F.coalesce(F.col("callee"), F.lit("")) != "").fillna(
        "", ["caller_instance", "callee_instance"]
    )
