"""Health KPIs: per (service, instance, method, role) call counters and latency histograms,
and per-process CPU, memory and GC, turned into :class:`~instrument.model.KpiSample` windows.

The seed asks providers and consumers to upload latency, QPS, success rate, memory
and CPU periodically; the pipeline turns them into routing weights. Recording a
call is two short critical sections (begin, end); the export thread collects a
window every ``CALLSCOPE_KPI_INTERVAL_S`` seconds.
"""

from __future__ import annotations

import gc
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .model import KpiSample

__all__ = ["LATENCY_BOUNDS_MS", "CallStats", "KpiRecorder", "ProcessStats", "quantile"]

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip

Key = tuple[str, str, str, str]  # service, instance, method, role


class CallStats:
    """Counters of one key; the window fields are reset at every collection."""

    __slots__ = ("buckets", "count", "errors", "in_flight", "max_ns")

    def __init__(self, n_buckets: int) -> None:
        self.in_flight = 0
        self.count = 0
        self.errors = 0
        self.max_ns = 0
        self.buckets = [0] * n_buckets


def quantile(
    buckets: Sequence[int], bounds: Sequence[float], q: float, max_ms: float = 0.0
) -> float:
    """The ``q`` quantile (ms) of a histogram, interpolated within its bucket.

    ``buckets[i]`` counts values in ``(bounds[i-1], bounds[i]]``; the last bucket
    is open-ended and is capped by ``max_ms``, the largest value seen.
    """
    total = sum(buckets)
    if not total:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            low = bounds[i - 1] if i else 0.0
            high = bounds[i] if i < len(bounds) else max(max_ms, low)
            if max_ms:
                high = min(high, max_ms)
            return round(low + (high - low) * (rank - seen) / n, 3)
        seen += n
    return round(max_ms, 3)


class KpiRecorder:
    """Counts calls as the interceptors see them; :meth:`collect` closes a window."""

    def __init__(
        self, app: str, app_instance: str, bounds: Sequence[float] = LATENCY_BOUNDS_MS
    ) -> None:
        self.app = app
        self.app_instance = app_instance
        self.bounds = tuple(bounds)
        self._bounds_ns = tuple(round(b * 1_000_000) for b in self.bounds)
        self._labels = [_label(b) for b in self.bounds] + ["+Inf"]
        self._stats: dict[Key, CallStats] = {}
        self._lock = threading.Lock()
        self._window_start = time.time()
        self.last_window: tuple[int, float] = (int(self._window_start * 1e6), 0.0)

    def begin(self, service: str, instance: str, method: str, role: str) -> CallStats:
        """A call started; hand the result to :meth:`end` when it finishes."""
        return self.begin_key((service, instance, method, role))

    def begin_key(self, key: Key) -> CallStats:
        """:meth:`begin` with the key built once by the caller (the interceptors cache it)."""
        with self._lock:
            stats = self._stats.get(key)
            if stats is None:
                stats = self._stats[key] = CallStats(len(self.bounds) + 1)
            stats.in_flight += 1
        return stats

    def end(self, stats: CallStats, seconds: float, error: bool) -> None:
        self.end_ns(stats, int(seconds * 1e9), error)

    def end_ns(self, stats: CallStats, duration_ns: int, error: bool) -> None:
        """The call of ``stats`` finished after ``duration_ns``: O(1) but for a bisect over
        the few bucket bounds, done outside the lock."""
        i = bisect_left(self._bounds_ns, duration_ns)
        with self._lock:
            stats.in_flight -= 1
            stats.count += 1
            stats.buckets[i] += 1
            if error:
                stats.errors += 1
            if duration_ns > stats.max_ns:
                stats.max_ns = duration_ns

    def end_spans(self, spans: Iterable[Any]) -> None:
        """Finish the successful calls whose spans the interceptors queued with their counters
        (``span.kpi``): the export thread does this share of the work, one lock per batch."""
        bounds = self._bounds_ns
        stats_of = self._stats.get
        with self._lock:
            for span in spans:
                if span.__class__ is tuple:  # an Ended tuple: its KPI key is last
                    key = span[6]
                    stats = stats_of(key) if key is not None else None
                    if stats is None:
                        continue
                    ns = span[5]
                else:
                    stats = span.kpi
                    if stats is None:
                        continue
                    ns = span.duration_ns
                stats.in_flight -= 1
                stats.count += 1
                stats.buckets[bisect_left(bounds, ns)] += 1
                if ns > stats.max_ns:
                    stats.max_ns = ns

    def collect(self, process: Mapping[str, object] | None = None) -> list[KpiSample]:
        """Close the current window: one sample per key that saw calls or has some in flight."""
        now = time.time()
        empty = [0] * (len(self.bounds) + 1)
        rows = []
        with self._lock:
            start, self._window_start = self._window_start, now
            for key, stats in list(self._stats.items()):
                if not stats.count and not stats.in_flight:
                    del self._stats[key]  # idle for a whole window: forget it
                    continue
                rows.append((key, stats.count, stats.errors, stats.in_flight,
                             stats.max_ns / 1e6, stats.buckets))  # fmt: skip
                stats.count = stats.errors = stats.max_ns = 0
                stats.buckets = list(empty)
        window_s = max(now - start, 1e-3)
        self.last_window = (int(start * 1e6), round(window_s, 3))
        proc = dict(process or {})
        samples = []
        for (service, instance, method, role), count, errors, in_flight, max_ms, buckets in rows:
            latency = {
                "p50": quantile(buckets, self.bounds, 0.50, max_ms),
                "p95": quantile(buckets, self.bounds, 0.95, max_ms),
                "p99": quantile(buckets, self.bounds, 0.99, max_ms),
                "max": round(max_ms, 3),
                "buckets": {lab: n for lab, n in zip(self._labels, buckets, strict=True) if n},
            }
            samples.append(
                KpiSample(
                    service=service,
                    instance=instance,
                    method=method,
                    role=role,
                    window_start_us=int(start * 1e6),
                    window_s=round(window_s, 3),
                    count=count,
                    errors=errors,
                    qps=round(count / window_s, 3),
                    in_flight=in_flight,
                    latency_ms=latency,
                    cpu_percent=float(proc.get("cpu_percent", 0.0)),  # type: ignore[arg-type]
                    rss_bytes=int(proc.get("rss_bytes", 0)),  # type: ignore[call-overload]
                    app=self.app,
                    app_instance=self.app_instance,
                )
            )
        return samples


def _label(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


class ProcessStats:
    """CPU % since the last reading, RSS and GC collections of this process (psutil, gc)."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._process.cpu_percent(interval=None)  # the first reading starts the clock

    def read(self) -> dict[str, object]:
        with self._process.oneshot():
            cpu = self._process.cpu_percent(interval=None)
            rss = self._process.memory_info().rss
        collections = {f"gen{i}": s["collections"] for i, s in enumerate(gc.get_stats())}
        return {"cpu_percent": round(cpu, 2), "rss_bytes": int(rss), "gc_collections": collections}

    def sample(
        self,
        app: str,
        app_instance: str,
        window_start_us: int,
        window_s: float,
        counters: Mapping[str, int],
        reading: Mapping[str, object] | None = None,
    ) -> KpiSample:
        """The per-process sample (role ``process``) with the export pipeline's counters."""
        reading = reading or self.read()
        return KpiSample(
            service=app,
            instance=app_instance,
            method="",
            role="process",
            window_start_us=window_start_us,
            window_s=round(max(window_s, 1e-3), 3),
            cpu_percent=float(reading["cpu_percent"]),  # type: ignore[arg-type]
            rss_bytes=int(reading["rss_bytes"]),  # type: ignore[call-overload]
            app=app,
            app_instance=app_instance,
            gc_collections=dict(reading["gc_collections"]),  # type: ignore[call-overload]
            counters=dict(counters),
        )
