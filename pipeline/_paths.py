"""Trace-level results of the batch job: indirect dependencies by path, and the share of
the critical path each service holds.

Both need a whole trace at hand, so the spans are grouped by trace and each trace is read
by plain Python in the executors:

* **Paths.** Every call has a path: the services from the trace's first caller down to
  the callee (a SERVER span's path is its caller's plus its own service; a trace entered
  from an uninstrumented caller starts at the ``peer_service`` its SERVER span names; a
  call to an uninstrumented peer ends at the CLIENT span's ``peer_service``, as edges do).
  A path of three services or more is an indirect dependency; per window (of the call's
  start, as edges) each is counted with its calls and errors (the caller's view).
* **Critical-path share.** ``storage.critical_path`` (Jaeger's: the stretches the root
  waited on, the dashboard's trace view uses the same) gives each trace's segments; each
  segment's time goes to its span's service. Per window (of the trace's start) and
  service: the summed critical time, its share of all the window's critical time, and on
  how many traces' critical paths the service was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from callscope_contract import SpanRecord
from storage import CriticalShare, DependencyPath, Trace, critical_path

from ._calls import SPAN_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["MAX_DEPTH", "trace_results"]

MAX_DEPTH = 64
"""Longer ancestries (or a parent loop) stop there."""
PATH, SHARE = "p", "s"


def trace_results(
    spans: DataFrame, window_s: int
) -> tuple[list[DependencyPath], list[CriticalShare]]:
    """The paths (three services or more) and critical-path shares of ``spans``' windows."""
    from pyspark.sql import functions as F

    window_us = window_s * 1_000_000
    traces = (
        spans.select(*SPAN_COLUMNS)
        .groupBy("trace_id")
        .agg(F.collect_list(F.struct(*SPAN_COLUMNS)).alias("spans"))
    )
    totals = (
        traces.rdd.flatMap(lambda row: _facts(row["spans"], window_us)).reduceByKey(_add).collect()
    )
    paths = [
        DependencyPath(tuple(key[2]), key[1], window_s, calls, errors)
        for key, (calls, errors) in totals if key[0] == PATH
    ]  # fmt: skip
    critical = {(key[1], key[2]): v for key, v in totals if key[0] == SHARE}
    window_time: dict[int, int] = {}
    for (window, _), (critical_us, _) in critical.items():
        window_time[window] = window_time.get(window, 0) + critical_us
    shares = [
        CriticalShare(
            service, window, window_s, round(critical_us / 1000, 3),
            round(critical_us / window_time[window], 6) if window_time[window] else 0.0,
            on_path, critical[(window, "")][1],
        )
        for (window, service), (critical_us, on_path) in critical.items() if service
    ]  # fmt: skip
    paths.sort(key=lambda p: (p.window_start_us, p.services))
    shares.sort(key=lambda s: (s.window_start_us, s.service))
    return paths, shares


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _facts(rows: list[Any], window_us: int) -> Iterator[tuple[tuple[Any, ...], tuple[int, int]]]:
    """One trace's ((kind, window, path or service), (a, b)) to be summed: a path's
    (calls, errors); a service's (critical µs, 1); the window's trace count under ``""``."""
    spans = [SpanRecord(**{k: v for k, v in row.asDict().items() if v is not None}) for row in rows]
    by_id = {s.span_id: s for s in spans}
    served = {s.parent_span_id: s for s in spans if s.kind == "SERVER" and s.parent_span_id}
    memo: dict[str, tuple[str, ...]] = {}
    for span in spans:
        window = span.start_us - span.start_us % window_us
        if span.kind == "CLIENT":
            child = served.get(span.span_id)
            callee = child.service if child is not None else span.peer_service
            path = (*_path(span, by_id, memo), callee) if callee else ()
        elif span.kind == "SERVER" and span.peer_service and span.parent_span_id not in by_id:
            path = _path(span, by_id, memo)  # called by an uninstrumented caller
        else:
            continue
        if len(path) >= 3:
            yield (PATH, window, path), (1, int(span.status == "ERROR"))
    trace = Trace(spans[0].trace_id, sorted(spans, key=lambda s: (s.start_us, s.span_id)))
    window = trace.start_us - trace.start_us % window_us
    spent: dict[str, int] = {}
    for segment in critical_path(trace):
        service = by_id[segment.span_id].service
        spent[service] = spent.get(service, 0) + segment.end_us - segment.start_us
    for service, micros in spent.items():
        yield (SHARE, window, service), (micros, 1)
    yield (SHARE, window, ""), (0, 1)  # the window's traces


def _path(span: SpanRecord, by_id: dict[str, SpanRecord],
          memo: dict[str, tuple[str, ...]]) -> tuple[str, ...]:  # fmt: skip
    """The services from the trace's first caller to ``span``'s own service."""
    chain: list[SpanRecord] = []
    current: SpanRecord | None = span
    while current is not None and current.span_id not in memo and len(chain) < MAX_DEPTH:
        chain.append(current)
        parent = by_id.get(current.parent_span_id) if current.parent_span_id else None
        current = parent if parent is not None and parent not in chain else None
    path = memo[current.span_id] if current is not None and current.span_id in memo else ()
    for s in reversed(chain):
        if s.kind == "SERVER":
            if not path and s.peer_service:
                path = (s.peer_service,)  # entered from an uninstrumented caller
            path = (*path, s.service)
        elif not path:
            path = (s.service,)  # a root CLIENT (or internal) span
        memo[s.span_id] = path
    return path
