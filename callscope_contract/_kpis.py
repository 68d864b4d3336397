"""The KPI sample: health of one (service, instance, method, role) over one window.

Samples travel as one JSON object per message on ``callscope.kpis``, keyed by
``service`` (DESIGN §3.3, §3.6). ``service`` is the RPC service, ``instance`` the
provider's ``host:port`` (for a consumer: the provider it called), ``role`` is
``provider``, ``consumer`` or ``process`` (one per process per window: CPU,
memory, GC and pipeline counters, ``method`` empty). ``app`` and
``app_instance`` name the process that reported the sample. ``counters`` of a
consumer sample count the cluster's governance decisions on those calls in the window
(``governance.retry``, ``governance.route.filtered``, ``governance.weights.applied``,
``governance.failcache.enqueue``...); of a process sample, the export pipeline's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import _checks as check
from ._checks import SCHEMA_VERSION, ValidationError

__all__ = ["ROLES", "KpiSample", "decode_kpi"]

ROLES = ("provider", "consumer", "process")


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
        data = check.obj(data, "kpi")
        version = check.schema(data)
        role = check.choice(data, "role", ROLES)
        latency = _latency(data.get("latency_ms"))
        count = check.count(data, "count", default=0)
        errors = check.count(data, "errors", default=0)
        if errors > count:
            raise ValidationError("errors", f"{errors} errors out of {count} calls")
        window_s = check.number(data, "window_s")
        if window_s <= 0:
            raise ValidationError("window_s", "must be positive")
        return cls(
            service=check.text(data, "service"),
            instance=check.text(data, "instance", required=False),
            method=check.text(data, "method", required=role != "process"),
            role=role,
            window_start_us=check.count(data, "window_start_us"),
            window_s=window_s,
            count=count,
            errors=errors,
            qps=check.number(data, "qps"),
            in_flight=check.count(data, "in_flight", default=0),
            latency_ms=latency,
            cpu_percent=check.number(data, "cpu_percent"),
            rss_bytes=check.count(data, "rss_bytes", default=0),
            app=check.text(data, "app", required=False),
            app_instance=check.text(data, "app_instance", required=False),
            gc_collections=_counts(data.get("gc_collections"), "gc_collections"),
            counters=_counts(data.get("counters"), "counters"),
            schema=version,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> KpiSample:
        return cls.from_dict(check.loads(raw))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return check.dumps(self.to_dict())


def _latency(value: Any) -> dict[str, Any]:
    latency = check.attributes(value, "latency_ms")
    for key in ("p50", "p95", "p99"):
        if key in latency:
            check.number(latency, key, prefix="latency_ms.")
    buckets = check.attributes(latency.get("buckets"), "latency_ms.buckets")
    for bound in buckets:
        if bound != "+Inf":
            try:
                float(bound)
            except ValueError:
                raise ValidationError(f"latency_ms.buckets.{bound}", "bad bound") from None
        check.count(buckets, bound, prefix="latency_ms.buckets.")
    return latency


def _counts(value: Any, name: str) -> dict[str, int]:
    counts = check.attributes(value, name)
    for key in counts:
        check.count(counts, key, prefix=f"{name}.")
    return counts


def decode_kpi(raw: bytes | str) -> KpiSample:
    """Parse and validate one message of ``callscope.kpis``."""
    return KpiSample.from_json(raw)
