"""The data contract every later floor reads: the span record and the KPI sample.

Both travel as one JSON object per message (DESIGN §3.3, §3.6): spans on
``callscope.spans`` keyed by ``trace_id``, KPI samples on ``callscope.kpis``
keyed by ``service``. ``schema`` is the version of this contract; readers
refuse a version newer than they know, and a field that breaks the contract is
named in the :class:`ValidationError`, so a collector can route the record to
its dead-letter topic with a reason a person can act on.

Span fields: ``service``/``instance``/``host`` describe the process that made
the span (``CALLSCOPE_SERVICE_NAME``, its address, its host name);
``peer_service`` is the other side's service name when it is known (a server
learns its caller's from the call), otherwise the RPC service called;
``peer_instance`` is the other side's ``host:port``. Times are microseconds:
``start_us`` since the Unix epoch, ``duration_us`` on a monotonic clock.

KPI fields: one sample per (``service``, ``instance``, ``method``, ``role``)
and window. ``service`` is the RPC service, ``instance`` the provider's
``host:port`` (for a consumer: the provider it called), ``role`` is
``provider``, ``consumer`` or ``process`` (one per process per window: CPU,
memory, GC and pipeline counters, ``method`` empty). ``app`` and
``app_instance`` name the process that reported the sample.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "KIND_NAMES",
    "ROLES",
    "SCHEMA_VERSION",
    "STATUSES",
    "KpiSample",
    "SpanEvent",
    "SpanRecord",
    "ValidationError",
    "decode_kpi",
    "decode_span",
]

SCHEMA_VERSION = 1
KIND_NAMES = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUSES = ("OK", "ERROR")
ROLES = ("provider", "consumer", "process")

_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_ZERO32 = "0" * 32
_ZERO16 = "0" * 16


class ValidationError(ValueError):
    """A record breaks the contract; ``field`` names the offending field (dotted path)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


# -- field checks (each names the field it checks) ----------------------------
def _obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(what, f"must be a JSON object, not {type(data).__name__}")
    return data


def _schema(data: dict[str, Any]) -> int:
    version = data.get("schema")
    if type(version) is not int:
        raise ValidationError("schema", "missing or not an integer")
    if not 1 <= version <= SCHEMA_VERSION:
        raise ValidationError("schema", f"version {version} is not supported (<= {SCHEMA_VERSION})")
    return version


def _str(data: dict[str, Any], name: str, *, required: bool = True, prefix: str = "") -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ValidationError(prefix + name, "must be a non-empty string")
    return value


def _int(data: dict[str, Any], name: str, *, prefix: str = "", default: int | None = None) -> int:
    value = data.get(name, default)
    if type(value) is not int or value < 0:
        raise ValidationError(prefix + name, "must be a non-negative integer")
    return value


def _num(data: dict[str, Any], name: str, *, prefix: str = "") -> float:
    value = data.get(name, 0.0)
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValidationError(prefix + name, "must be a finite non-negative number")
    return float(value)


def _choice(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise ValidationError(name, f"must be one of {', '.join(allowed)}, not {value!r}")
    return value  # type: ignore[return-value]


def _hex(
    data: dict[str, Any], name: str, pattern: re.Pattern[str], zero: str, *, required: bool
) -> str:
    value = data.get(name)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not pattern.match(value) or value == zero:
        raise ValidationError(name, f"must be {len(zero)} lowercase hex digits, not all zero")
    return value


def _attributes(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValidationError(name, "must be an object with string keys")
    return value


# -- spans --------------------------------------------------------------------
@dataclass(slots=True)
class SpanEvent:
    """Something that happened during a span: a retry, a failover, a breaker opening."""

    time_us: int
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SpanRecord:
    """One finished span as the pipeline stores it (DESIGN §3.3)."""

    trace_id: str
    span_id: str
    name: str
    kind: str
    service: str
    start_us: int
    duration_us: int
    parent_span_id: str = ""
    instance: str = ""
    host: str = ""
    peer_service: str = ""
    peer_instance: str = ""
    status: str = "OK"
    error_code: str = ""
    error_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Any) -> SpanRecord:
        """Validate a decoded JSON object; :class:`ValidationError` names the bad field."""
        data = _obj(data, "span")
        version = _schema(data)
        events = data.get("events") or []
        if not isinstance(events, list):
            raise ValidationError("events", "must be a list")
        parsed = []
        for i, event in enumerate(events):
            where = f"events[{i}]."
            event = _obj(event, f"events[{i}]")
            parsed.append(
                SpanEvent(
                    _int(event, "time_us", prefix=where),
                    _str(event, "name", prefix=where),
                    _attributes(event.get("attributes"), where + "attributes"),
                )
            )
        status = _choice(data, "status", STATUSES)
        return cls(
            trace_id=_hex(data, "trace_id", _HEX32, _ZERO32, required=True),
            span_id=_hex(data, "span_id", _HEX16, _ZERO16, required=True),
            parent_span_id=_hex(data, "parent_span_id", _HEX16, _ZERO16, required=False),
            name=_str(data, "name"),
            kind=_choice(data, "kind", KIND_NAMES),
            service=_str(data, "service"),
            instance=_str(data, "instance", required=False),
            host=_str(data, "host", required=False),
            peer_service=_str(data, "peer_service", required=False),
            peer_instance=_str(data, "peer_instance", required=False),
            start_us=_int(data, "start_us"),
            duration_us=_int(data, "duration_us"),
            status=status,
            error_code=_str(data, "error_code", required=False),
            error_message=_str(data, "error_message", required=False),
            attributes=_attributes(data.get("attributes"), "attributes"),
            events=parsed,
            schema=version,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> SpanRecord:
        return cls.from_dict(_loads(raw))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return _dumps(self.to_dict())


# -- KPI samples --------------------------------------------------------------
@dataclass(slots=True)
class KpiSample:
    """Health of one (service, instance, method, role) over one window (DESIGN §3.3).

    ``latency_ms`` holds ``p50``, ``p95``, ``p99`` and ``buckets`` (upper bound
    in ms, or ``"+Inf"``, to the count of calls in that bucket only).
    """

    service: str
    instance: str
    method: str
    role: str
    window_start_us: int
    window_s: float
    count: int = 0
    errors: int = 0
    qps: float = 0.0
    in_flight: int = 0
    latency_ms: dict[str, Any] = field(default_factory=dict)
    cpu_percent: float = 0.0
    rss_bytes: int = 0
    app: str = ""
    app_instance: str = ""
    gc_collections: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Any) -> KpiSample:
        data = _obj(data, "kpi")
        version = _schema(data)
        role = _choice(data, "role", ROLES)
        latency = _attributes(data.get("latency_ms"), "latency_ms")
        for key in ("p50", "p95", "p99"):
            if key in latency:
                _num(latency, key, prefix="latency_ms.")
        buckets = _attributes(latency.get("buckets"), "latency_ms.buckets")
        for bound in buckets:
            if bound != "+Inf":
                try:
                    float(bound)
                except ValueError:
                    raise ValidationError(f"latency_ms.buckets.{bound}", "bad bound") from None
            _int(buckets, bound, prefix="latency_ms.buckets.")
        count = _int(data, "count", default=0)
        errors = _int(data, "errors", default=0)
        if errors > count:
            raise ValidationError("errors", f"{errors} errors out of {count} calls")
        window_s = _num(data, "window_s")
        if window_s <= 0:
            raise ValidationError("window_s", "must be positive")
        counters = _attributes(data.get("counters"), "counters")
        for name in counters:
            _int(counters, name, prefix="counters.")
        gc_counts = _attributes(data.get("gc_collections"), "gc_collections")
        for name in gc_counts:
            _int(gc_counts, name, prefix="gc_collections.")
        return cls(
            service=_str(data, "service"),
            instance=_str(data, "instance", required=False),
            method=_str(data, "method", required=role != "process"),
            role=role,
            window_start_us=_int(data, "window_start_us"),
            window_s=window_s,
            count=count,
            errors=errors,
            qps=_num(data, "qps"),
            in_flight=_int(data, "in_flight", default=0),
            latency_ms=latency,
            cpu_percent=_num(data, "cpu_percent"),
            rss_bytes=_int(data, "rss_bytes", default=0),
            app=_str(data, "app", required=False),
            app_instance=_str(data, "app_instance", required=False),
            gc_collections=gc_counts,
            counters=counters,
            schema=version,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> KpiSample:
        return cls.from_dict(_loads(raw))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return _dumps(self.to_dict())


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("$", f"not JSON: {exc}") from None


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def decode_span(raw: bytes | str) -> SpanRecord:
    """Parse and validate one message of ``callscope.spans``."""
    return SpanRecord.from_json(raw)


def decode_kpi(raw: bytes | str) -> KpiSample:
    """Parse and validate one message of ``callscope.kpis``."""
    return KpiSample.from_json(raw)
