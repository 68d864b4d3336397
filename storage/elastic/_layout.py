"""Index names, the span index template and the document a span becomes.

Spans go to daily indices ``<prefix>-spans-YYYY.MM.DD`` (UTC day of ``start_us``) made
from one index template, so retention drops whole days; a document's id is
``trace_id + span_id``, so a redelivered span overwrites itself. ``tags`` holds the
span's scalar attributes as ``key=value`` keywords (searchable with one term query per
tag); the attributes, events and links themselves are kept in ``_source`` but not indexed, so
no attribute can break the mapping.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from callscope_contract import SpanRecord

from .._codec import span_to_dict
from .._model import span_tags

__all__ = [
    "SPAN_MAPPINGS",
    "analytics_index",
    "day_index",
    "index_day",
    "span_doc",
    "spans_pattern",
]

_KEYWORDS = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "service", "instance", "host",
    "peer_service", "peer_instance", "status", "error_code", "tags",
)  # fmt: skip

SPAN_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        **{name: {"type": "keyword", "ignore_above": 512} for name in _KEYWORDS},
        "start_us": {"type": "long"},
        "duration_us": {"type": "long"},
        "error": {"type": "boolean"},
        "error_message": {"type": "keyword", "index": False, "doc_values": False},
        "schema": {"type": "integer"},
        "attributes": {"type": "object", "enabled": False},
        "events": {"type": "object", "enabled": False},
        "links": {"type": "object", "enabled": False},
    },
}

ANALYTICS_MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "properties": {
        "kind": {"type": "keyword"},
        "service": {"type": "keyword"},
        "time_us": {"type": "long"},
        "key": {"type": "keyword"},  # the natural key: pages of alarms sort by time, then it
        "body": {"type": "object", "enabled": False},
    },
}


def spans_pattern(prefix: str) -> str:
    return f"{prefix}-spans-*"


def day_index(prefix: str, start_us: int) -> str:
    return _day_index(prefix, start_us // _DAY_US)


_DAY_US = 86_400_000_000


@functools.lru_cache(maxsize=1024)  # a datetime per span was a tenth of the bulk's cost
def _day_index(prefix: str, day_number: int) -> str:
    day = dt.datetime.fromtimestamp(day_number * 86_400, dt.UTC)
    return f"{prefix}-spans-{day:%Y.%m.%d}"


def index_day(prefix: str, index: str) -> dt.date | None:
    """The UTC day a daily index holds, or None for an index not named by :func:`day_index`."""
    try:
        return dt.datetime.strptime(index.removeprefix(f"{prefix}-spans-"), "%Y.%m.%d").date()
    except ValueError:
        return None


def analytics_index(prefix: str) -> str:
    return f"{prefix}-analytics"


def span_doc(span: SpanRecord) -> dict[str, Any]:
    doc = span_to_dict(span)
    doc["tags"] = span_tags(span)
    doc["error"] = span.status == "ERROR"
    return doc
