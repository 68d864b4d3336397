"""What the stores return and take besides spans: traces, trace queries, analytics records.

A leaf module: it imports nothing of ``storage`` but its errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callscope_contract import SpanRecord

from ._errors import BadQuery

__all__ = [
    "CallerStat",
    "DependencyEdge",
    "Trace",
    "TraceQuery",
    "TraceSummary",
    "WeightChange",
    "span_tags",
]

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Trace:
    """All stored spans of one trace, oldest first."""

    trace_id: str
    spans: list[SpanRecord]

    @property
    def start_us(self) -> int:
        return min(s.start_us for s in self.spans)

    @property
    def duration_us(self) -> int:
        return max(s.start_us + s.duration_us for s in self.spans) - self.start_us

    @property
    def has_error(self) -> bool:
        return any(s.status == "ERROR" for s in self.spans)

    @property
    def root(self) -> SpanRecord:
        """The span without a stored parent (the earliest one when the root is missing)."""
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if not s.parent_span_id or s.parent_span_id not in ids]
        return roots[0] if roots else self.spans[0]

    def summary(self) -> TraceSummary:
        """What a search result shows of this trace."""
        root = self.root
        return TraceSummary(
            trace_id=self.trace_id,
            start_us=self.start_us,
            duration_us=self.duration_us,
            span_count=len(self.spans),
            error_count=sum(s.status == "ERROR" for s in self.spans),
            services=tuple(sorted({s.service for s in self.spans})),
            root_service=root.service,
            root_name=root.name,
        )


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One line of a trace search: when, how long, how big, which services, any errors."""

    trace_id: str
    start_us: int
    duration_us: int
    span_count: int
    error_count: int
    services: tuple[str, ...]
    root_service: str
    root_name: str


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """A trace search: traces with at least one span of ``service`` matching every condition.

    ``tags`` are ``key=value`` on span attributes (values compared as text, ``true`` for
    booleans); times are microseconds since the epoch, ``start_min_us`` inclusive and
    ``start_max_us`` exclusive; results come newest first (by the matching span's start).
    """

    service: str
    operation: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    min_duration_us: int | None = None
    max_duration_us: int | None = None
    start_min_us: int | None = None
    start_max_us: int | None = None
    errors_only: bool = False
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not self.service:
            raise BadQuery("a trace query needs a service")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise BadQuery(f"limit must be within 1..{MAX_LIMIT}, not {self.limit}")
        for name in ("min_duration_us", "max_duration_us", "start_min_us", "start_max_us"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 0):
                raise BadQuery(f"{name} must be a non-negative integer")

    @staticmethod
    def parse_tags(items: list[str] | tuple[str, ...]) -> dict[str, str]:
        """``["k=v", ...]`` from a command line or a URL into a dict; a bad item is named."""
        tags = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise BadQuery(f"a tag filter is key=value, not {item!r}")
            tags[key] = value
        return tags

    def tag_terms(self) -> list[str]:
        return [f"{k}={v}" for k, v in sorted(self.tags.items())]

    def matches(self, span_start_us: int, duration_us: int, error: bool) -> bool:
        """The numeric conditions, for backends that filter in the client."""
        if self.errors_only and not error:
            return False
        if self.min_duration_us is not None and duration_us < self.min_duration_us:
            return False
        if self.max_duration_us is not None and duration_us > self.max_duration_us:
            return False
        if self.start_min_us is not None and span_start_us < self.start_min_us:
            return False
        return self.start_max_us is None or span_start_us < self.start_max_us


def _tag_text(value: Any) -> str | None:
    if type(value) is str:  # the common case first
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def span_tags(span: SpanRecord) -> list[str]:
    """The searchable ``key=value`` terms of a span: its scalar attributes, as text."""
    terms = []
    for key, value in span.attributes.items():
        text = _tag_text(value)
        if text is not None and len(key) + len(text) < 512:
            terms.append(f"{key}={text}")
    return terms


# -- analytics records ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DependencyEdge:
    """Calls from ``caller`` to ``callee`` (services) in one window: a dependency-graph edge.

    The graph has three levels: a service edge leaves ``caller_instance``,
    ``callee_instance`` and ``method`` empty; an instance edge names both instances; a
    method edge names the method called (``Service/method``).
    """

    caller: str
    callee: str
    window_start_us: int
    window_s: float
    calls: int
    errors: int = 0
    p99_ms: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    caller_instance: str = ""
    callee_instance: str = ""
    method: str = ""

    @property
    def level(self) -> str:
        """``service``, ``instance`` or ``method``."""
        if self.method:
            return "method"
        return "instance" if self.caller_instance or self.callee_instance else "service"


@dataclass(frozen=True, slots=True)
class CallerStat:
    """How much one caller used ``service`` in one window (for top-N callers)."""

    service: str
    caller: str
    window_start_us: int
    window_s: float
    calls: int
    errors: int = 0
    avg_ms: float = 0.0
    p99_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class WeightChange:
    """A routing weight the pipeline gave one provider instance, and why."""

    service: str
    instance: str
    time_us: int
    weight: int
    reason: str = ""
