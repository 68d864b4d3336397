"""The HBase backend: ``hbase://HOST:PORT?prefix=callscope&salt=16`` (Thrift v1, happybase).

Options: ``prefix`` (table names ``<prefix>_traces``, ``_trace_index``, ``_operations``,
``_analytics``), ``salt`` (buckets of the salted row keys), ``pool`` (connections),
``timeout_s``. Thrift v1 cannot pre-split a table; :func:`presplit_script` prints the
``hbase shell`` commands that create the tables split at the salt buckets (run it once
before the first collector in production; the store then finds the tables and keeps them).
"""

from __future__ import annotations

from .._backends import StoreUrl
from ._analytics import HBaseAnalyticsTable
from ._rowkeys import split_keys
from ._spans import FAMILIES, HBaseSpanStore

__all__ = [
    "HBaseAnalyticsTable",
    "HBaseSpanStore",
    "open_analytics",
    "open_spans",
    "presplit_script",
]


def open_spans(url: StoreUrl) -> HBaseSpanStore:
    return HBaseSpanStore(url)


def open_analytics(url: StoreUrl) -> HBaseAnalyticsTable:
    return HBaseAnalyticsTable(url)


def presplit_script(prefix: str = "callscope", buckets: int = 16) -> str:
    """``hbase shell`` commands creating the span tables with one region per salt bucket."""
    splits = ", ".join(f"'\\x{key[0]:02x}'" for key in split_keys(buckets))
    lines = []
    for table, families in FAMILIES.items():
        fams = ", ".join(f"{{NAME => '{name}', VERSIONS => 1}}" for name in families)
        lines.append(f"create '{prefix}_{table}', {fams}, SPLITS => [{splits}]")
    return "\n".join(lines) + "\n"
