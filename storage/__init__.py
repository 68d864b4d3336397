"""callscope storage: spans and analytics results in SQLite, Elasticsearch or HBase.

Open a store by URL -- ``sqlite://callscope.db`` (the embedded default),
``elasticsearch://127.0.0.1:9200``, ``hbase://127.0.0.1:9090`` -- with
:func:`open_span_store` and :func:`open_analytics_store` (``read_only=True`` to read what
is there and create nothing). The contract every backend
keeps is in :class:`SpanStore` (``storage/_api.py``); one conformance suite checks it on
all three.
"""

from __future__ import annotations

from ._alarms import FIRING, RESOLVED, Alarm, AlarmPage
from ._analytics import AnalyticsStore
from ._api import AnalyticsRow, AnalyticsTable, SpanStore
from ._backends import (
    DEFAULT_URL,
    StoreUrl,
    open_analytics_store,
    open_span_store,
    parse_url,
    register_backend,
)
from ._codec import span_from_json, span_to_json
from ._critical import children_by_id, critical_stretches
from ._errors import BadQuery, NoStore, RejectedSpans, StorageError, StorageUnavailable
from ._model import (
    CallerStat,
    DependencyEdge,
    Trace,
    TraceQuery,
    TraceSummary,
    WeightChange,
    span_tags,
)
from ._paths import CriticalShare, DependencyPath
from ._tracediff import DiffNode, compare_traces
from ._traceview import PathSegment, SpanNode, critical_path, span_tree, summary_line, tree_lines

__all__ = [
    "DEFAULT_URL",
    "FIRING",
    "RESOLVED",
    "Alarm",
    "AlarmPage",
    "AnalyticsRow",
    "AnalyticsStore",
    "AnalyticsTable",
    "BadQuery",
    "CallerStat",
    "CriticalShare",
    "DependencyEdge",
    "DependencyPath",
    "DiffNode",
    "NoStore",
    "PathSegment",
    "RejectedSpans",
    "SpanNode",
    "SpanStore",
    "StorageError",
    "StorageUnavailable",
    "StoreUrl",
    "Trace",
    "TraceQuery",
    "TraceSummary",
    "WeightChange",
    "children_by_id",
    "compare_traces",
    "critical_path",
    "critical_stretches",
    "open_analytics_store",
    "open_span_store",
    "parse_url",
    "register_backend",
    "span_from_json",
    "span_tags",
    "span_to_json",
    "span_tree",
    "summary_line",
    "tree_lines",
]
