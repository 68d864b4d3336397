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
    """Every call the spans record, once (see the module docstring)."""
    from pyspark.sql import functions as F

    client = spans.where(F.col("kind") == "CLIENT").alias("c")
    server = spans.where(F.col("kind") == "SERVER")
    # At most one traced callee per CLIENT span (a duplicate SERVER span must not double it).
    callee = (
        server.where(F.col("parent_span_id") != "")
        .groupBy("trace_id", "parent_span_id")
        .agg(F.first("service").alias("service"), F.first("instance").alias("instance"))
        .alias("s")
    )
    on_client = (F.col("c.trace_id") == F.col("s.trace_id")) & (
        F.col("s.parent_span_id") == F.col("c.span_id")
    )
    from_clients = client.join(callee, on_client, "left").select(
        F.col("c.service").alias("caller"),
        F.col("c.instance").alias("caller_instance"),
        F.coalesce(F.col("s.service"), F.col("c.peer_service")).alias("callee"),
        F.coalesce(F.col("s.instance"), F.col("c.peer_instance")).alias("callee_instance"),
        F.col("c.name").alias("method"),
        F.col("c.start_us"),
        F.col("c.duration_us"),
        (F.col("c.status") == "ERROR").alias("error"),
    )
    parents = client.select(F.col("trace_id").alias("p_trace"), F.col("span_id").alias("p_span"))
    orphan = (F.col("trace_id") == F.col("p_trace")) & (F.col("parent_span_id") == F.col("p_span"))
    from_servers = (
        server.where(F.coalesce(F.col("peer_service"), F.lit("")) != "")
        .join(parents, orphan, "left_anti")
        .select(
            F.col("peer_service").alias("caller"),
            F.col("peer_instance").alias("caller_instance"),
            F.col("service").alias("callee"),
            F.col("instance").alias("callee_instance"),
            F.col("name").alias("method"),
            "start_us",
            "duration_us",
            (F.col("status") == "ERROR").alias("error"),
        )
    )
    both = from_clients.unionByName(from_servers)
    return both.where(F.coalesce(F.col("callee"), F.lit("")) != "").fillna(
        "", ["caller_instance", "callee_instance"]
    )
