"""The collector's own counters, for ``/metrics`` (Prometheus text) and as a KPI sample."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter

from callscope_contract import KpiSample

__all__ = ["CollectorMetrics"]

_HELP = {
    "consumed": ("counter", "Messages taken from a source"),
    "stored_spans": ("counter", "Spans written to the span store"),
    "stored_kpis": ("counter", "KPI samples written to the analytics store"),
    "dlq": ("counter", "Records sent to the dead-letter queue"),
    "retries": ("counter", "Store attempts that failed and were retried"),
    "batches": ("counter", "Batches stored and committed"),
    "commit_failures": ("counter", "Offset commits refused (a rebalance; records come again)"),
    "otlp_requests": ("counter", "OTLP export requests answered, by outcome"),
}
_LABEL_KEYS = {"dlq": "code", "otlp_requests": "outcome"}


class CollectorMetrics:
    """Thread-safe counters by name and label; gauges for lag and back-pressure."""

    def __init__(self, name: str = "callscope-collector") -> None:
        self.name = name
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lag: dict[str, int] = {}
        self._backing_off: set[str] = set()
        self._last_counts: Counter[tuple[str, str]] = Counter()
        self._window_start_us = time.time_ns() // 1000

    def add(self, name: str, n: int = 1, label: str = "") -> None:
        if n:
            with self._lock:
                self._counts[(name, label)] += n

    def set_lag(self, source: str, lag: int | None) -> None:
        with self._lock:
            if lag is not None:
                self._lag[source] = lag

    def set_backing_off(self, source: str, on: bool) -> None:
        with self._lock:
            (self._backing_off.add if on else self._backing_off.discard)(source)

    def total(self, name: str) -> int:
        with self._lock:
            return sum(v for (n, _), v in self._counts.items() if n == name)

    @property
    def lag(self) -> int:
        with self._lock:
            return sum(self._lag.values())

    def prometheus(self) -> str:
        """The text exposition format (version 0.0.4)."""
        with self._lock:
            counts, lag, paused = dict(self._counts), dict(self._lag), set(self._backing_off)
        lines = []
        for name, (kind, text) in _HELP.items():
            metric = f"callscope_collector_{name}_total"
            lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
            labelled = {label: v for (n, label), v in counts.items() if n == name}
            if not labelled:
                lines.append(f"{metric} 0")
            for label, value in sorted(labelled.items()):
                key = _LABEL_KEYS.get(name, "source")
                lines.append(
                    f'{metric}{{{key}="{label}"}} {value}' if label else f"{metric} {value}"
                )
        lines += ["# HELP callscope_collector_lag Records behind the end of the source",
                  "# TYPE callscope_collector_lag gauge"]  # fmt: skip
        lines += [f'callscope_collector_lag{{source="{s}"}} {v}' for s, v in sorted(lag.items())]
        lines += ["# HELP callscope_collector_backing_off 1 while a source waits for the store",
                  "# TYPE callscope_collector_backing_off gauge"]  # fmt: skip
        lines.append(f"callscope_collector_backing_off {1 if paused else 0}")
        return "\n".join(lines) + "\n"

    def kpi_sample(self) -> KpiSample:
        """This window's counter increments as a ``process`` KPI sample (DESIGN §3.3)."""
        now_us = time.time_ns() // 1000
        with self._lock:
            delta = self._counts - self._last_counts
            self._last_counts = Counter(self._counts)
            start, self._window_start_us = self._window_start_us, now_us
            lag = sum(self._lag.values())
        counters: dict[str, int] = {}
        for (name, _), value in delta.items():
            counters[name] = counters.get(name, 0) + value
        counters["lag"] = lag
        return KpiSample(
            service=self.name, instance=self.instance, method="", role="process",
            window_start_us=start, window_s=max((now_us - start) / 1e6, 0.001),
            count=counters.get("consumed", 0), app=self.name, app_instance=self.instance,
            counters=counters,
        )  # fmt: skip
