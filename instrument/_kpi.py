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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from callscope_contract import KpiSample
from rpc.cluster import DECISIONS

from ._native import hotpath

__all__ = ["LATENCY_BOUNDS_MS", "CallStats", "KpiRecorder", "ProcessStats", "quantile"]

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip

Key = tuple[str, str, str, str]  # service, instance, method, role


class _PyCallStats:
    """Counters of one key (the pure-Python path); the window fields are reset by
    :meth:`take`. Every change happens under ``_LOCK``: threads share the table."""

    __slots__ = ("bounds", "buckets", "count", "errors", "in_flight", "max_ns")

    def __init__(self, bounds_ns: Sequence[int]) -> None:
        self.bounds = tuple(bounds_ns)
        self.in_flight = 0
        self.count = 0
        self.errors = 0
        self.max_ns = 0
        self.buckets = [0] * (len(self.bounds) + 1)

    def end(self, duration_ns: int, error: bool) -> None:
        """The call finished after ``duration_ns``."""
        with _LOCK:
            self._add(duration_ns, error)

    def take(self) -> tuple[int, int, int, int, list[int]]:
        """(count, errors, in_flight, max_ns, buckets) of the window, and a new window."""
        with _LOCK:
            return self._take()

    # -- under _LOCK --------------------------------------------------------------------
    def _add(self, duration_ns: int, error: bool) -> None:
        self.in_flight -= 1
        self.count += 1
        self.buckets[bisect_left(self.bounds, duration_ns)] += 1
        if error:
            self.errors += 1
        if duration_ns > self.max_ns:
            self.max_ns = duration_ns

    def _take(self) -> tuple[int, int, int, int, list[int]]:
        row = (self.count, self.errors, self.in_flight, self.max_ns, self.buckets)
        self.count = self.errors = self.max_ns = 0
        self.buckets = [0] * len(row[4])
        return row


_LOCK = threading.Lock()


def _py_stats_begin(stats: dict[Key, Any], key: Key, bounds_ns: Sequence[int]) -> Any:
    """``stats[key]`` (made when missing) with one more call in flight."""
    with _LOCK:
        entry = stats.get(key)
        if entry is None:
            entry = stats[key] = _PyCallStats(bounds_ns)
        entry.in_flight += 1
    return entry


def _py_take_all(stats: dict[Key, Any]) -> list[tuple[Key, int, int, int, int, list[int]]]:
    """Close every key's window; keys idle for the whole window are forgotten."""
    rows = []
    with _LOCK:
        for key, entry in list(stats.items()):
            if not entry.count and not entry.in_flight:
                del stats[key]
                continue
            rows.append((key, *entry._take()))
    return rows


def _py_end_all(ended: Iterable[tuple[Any, int]]) -> None:
    """Successful calls finished, ``(stats, duration_ns)`` each: one lock for the batch."""
    with _LOCK:
        for stats, duration_ns in ended:
            stats._add(duration_ns, False)


def _c_end_all(ended: Iterable[tuple[Any, int]]) -> None:
    for stats, duration_ns in ended:  # each end is atomic under the GIL
        stats.end(duration_ns, False)


# The C hot path's counters when it is built: its functions are atomic under the GIL.
CallStats: type = hotpath.CallStats if hotpath is not None else _PyCallStats
stats_begin: Callable[..., Any] = hotpath.stats_begin if hotpath is not None else _py_stats_begin
take_all: Callable[..., Any] = hotpath.take_all if hotpath is not None else _py_take_all
end_all: Callable[..., Any] = _c_end_all if hotpath is not None else _py_end_all


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
        self._stats: dict[Key, Any] = {}
        self._lock = threading.Lock()
        self._window_start = time.time()
        self.last_window: tuple[int, float] = (int(self._window_start * 1e6), 0.0)

    def begin(self, service: str, instance: str, method: str, role: str) -> Any:
        """A call started; hand the result to :meth:`end` when it finishes."""
        return self.begin_key((service, instance, method, role))

    def begin_key(self, key: Key) -> Any:
        """:meth:`begin` with the key built once by the caller (the interceptors cache it)."""
        return stats_begin(self._stats, key, self._bounds_ns)

    def end(self, stats: Any, seconds: float, error: bool) -> None:
        stats.end(int(seconds * 1e9), error)

    def end_ns(self, stats: Any, duration_ns: int, error: bool) -> None:
        """The call of ``stats`` finished after ``duration_ns``."""
        stats.end(duration_ns, error)

    def end_spans(self, spans: Iterable[Any]) -> None:
        """Finish the successful calls whose spans the interceptors queued with their counters
        (``span.kpi``, or an Ended tuple's KPI key): the export thread's share of the work."""
        stats_of = self._stats.get
        ended = []
        for span in spans:
            if span.__class__ is tuple:  # an Ended tuple: its KPI key is last
                key = span[6]
                stats = stats_of(key) if key is not None else None
                if stats is not None:
                    ended.append((stats, span[5]))
            elif span.kpi is not None:
                ended.append((span.kpi, span.duration_ns))
        if ended:
            end_all(ended)

    def collect(self, process: Mapping[str, object] | None = None) -> list[KpiSample]:
        """Close the current window: one sample per key that saw calls or has some in flight."""
        now = time.time()
        with self._lock:
            start, self._window_start = self._window_start, now
            rows = take_all(self._stats)
        window_s = max(now - start, 1e-3)
        self.last_window = (int(start * 1e6), round(window_s, 3))
        proc = dict(process or {})
        # Decisions by key: a consumer's (on its calls to a provider) and a provider's (its
        # admission refusals, its flow tier); each key's counts go to one sample only.
        decided = DECISIONS.take([(s, i, m) for (s, i, m, _role), *_ in rows])
        samples = []
        for (service, instance, method, role), count, errors, in_flight, max_ns, buckets in rows:
            max_ms = max_ns / 1e6
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
                    counters=_governance(decided.pop((service, instance, method), None)),
                )
            )
        return samples


def _governance(decisions: Mapping[str, int] | None) -> dict[str, int]:
    """A sample's counters: the governance decisions on its calls in the window."""
    if not decisions:
        return {}
    return {f"governance.{name}": n for name, n in decisions.items()}


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
