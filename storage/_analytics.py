"""The AnalyticsStore: what the collector and the pipeline compute, kept for display.

KPI samples (raw windows from the collector, rollups from the pipeline: a rollup is a
sample with a longer ``window_s``), dependency edges per window, top callers per window,
the history of routing weights, and the alarms the pipeline's rules raised. Each kind is
written idempotently by its natural key, so a re-run window or a redelivered sample
overwrites itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from types import TracebackType

from callscope_contract import KpiSample

from ._alarms import AlarmStoreMixin
from ._api import AnalyticsTable
from ._model import CallerStat, DependencyEdge, WeightChange
from ._paths import PathStoreMixin

__all__ = ["AnalyticsStore"]

KPI, EDGE, CALLER, WEIGHT = "kpi", "edge", "caller", "weight"
KINDS = (KPI, EDGE, CALLER, WEIGHT)


def _edge_key(e: DependencyEdge) -> str:
    where = (e.caller_instance, e.callee_instance, e.method)
    if not any(where):  # a service edge keeps the key it had before the other levels
        return f"{e.caller}|{e.callee}|{e.window_start_us}|{e.window_s}"
    return "|".join(map(str, (e.caller, e.callee, *where, e.window_start_us, e.window_s)))


def _edge_order(e: DependencyEdge) -> tuple[object, ...]:
    return (e.window_start_us, e.caller, e.callee, e.caller_instance, e.callee_instance, e.method)


def _kpi_key(s: KpiSample) -> str:
    parts = (s.service, s.instance, s.method, s.role, s.app_instance, s.window_start_us, s.window_s)
    return "|".join(map(str, parts))


class AnalyticsStore(AlarmStoreMixin, PathStoreMixin):
    """Typed reads and writes over one backend's :class:`AnalyticsTable` (alarms: see
    ``storage/_alarms.py``; call paths and critical-path shares: ``storage/_paths.py``)."""

    def __init__(self, table: AnalyticsTable) -> None:
        self.table = table
        self.url = table.url

    # -- KPI samples and rollups ------------------------------------------------------------
    def write_kpis(self, samples: Iterable[KpiSample]) -> None:
        rows = [(_kpi_key(s), s.service, s.window_start_us, s.to_dict()) for s in samples]
        self.table.put(KPI, rows)

    def kpis(
        self,
        service: str | None,
        start_us: int,
        end_us: int,
        *,
        app: str | None = None,
        method: str | None = None,
        role: str | None = None,
        window_s: float | None = None,
    ) -> list[KpiSample]:
        """Samples of ``service`` whose window starts in ``[start_us, end_us)``, oldest first.

        ``service`` is a sample's ``service`` (the RPC service; a process sample's is its
        application), ``None`` for any. ``app`` keeps the samples one application reported
        (its ``CALLSCOPE_SERVICE_NAME``: what spans call their ``service``), of every role.
        """
        out = []
        for row in self.table.rows(KPI, service, start_us, end_us):
            sample = KpiSample.from_dict(row)
            if app is not None and sample.app != app:
                continue
            if method is not None and sample.method != method:
                continue
            if role is not None and sample.role != role:
                continue
            if window_s is not None and sample.window_s != window_s:
                continue
            out.append(sample)
        return sorted(out, key=lambda s: (s.window_start_us, s.instance, s.method))

    # -- dependency edges -------------------------------------------------------------------
    def write_dependencies(self, edges: Iterable[DependencyEdge]) -> None:
        rows = [(_edge_key(e), e.caller, e.window_start_us, asdict(e)) for e in edges]
        self.table.put(EDGE, rows)

    def dependencies(
        self, start_us: int, end_us: int, level: str = "service"
    ) -> list[DependencyEdge]:
        """Edges of ``level`` (``service``, ``instance``, ``method``) of the windows starting
        in ``[start_us, end_us)``, oldest first."""
        edges = [DependencyEdge(**r) for r in self.table.rows(EDGE, None, start_us, end_us)]
        edges = [e for e in edges if e.level == level]
        return sorted(edges, key=_edge_order)

    # -- top callers ------------------------------------------------------------------------
    def write_top_callers(self, stats: Iterable[CallerStat]) -> None:
        rows = [
            (f"{s.service}|{s.caller}|{s.window_start_us}|{s.window_s}", s.service,
             s.window_start_us, asdict(s))
            for s in stats
        ]  # fmt: skip
        self.table.put(CALLER, rows)

    def top_callers(
        self, service: str, start_us: int, end_us: int, limit: int = 10
    ) -> list[CallerStat]:
        """Callers of ``service`` summed over the windows in range, most calls first.

        The result's window is the whole range; ``avg_ms`` is call-weighted, ``p99_ms`` the
        worst window's.
        """
        totals: dict[str, list[float]] = {}
        for row in self.table.rows(CALLER, service, start_us, end_us):
            t = totals.setdefault(row["caller"], [0, 0, 0.0, 0.0])
            t[0] += row["calls"]
            t[1] += row["errors"]
            t[2] += row["avg_ms"] * row["calls"]
            t[3] = max(t[3], row["p99_ms"])
        stats = [
            CallerStat(service, caller, start_us, (end_us - start_us) / 1e6, int(c), int(e),
                       round(ms / c, 3) if c else 0.0, p99)
            for caller, (c, e, ms, p99) in totals.items()
        ]  # fmt: skip
        stats.sort(key=lambda s: (-s.calls, s.caller))
        return stats[:limit]

    # -- routing weights --------------------------------------------------------------------
    def write_weights(self, changes: Iterable[WeightChange]) -> None:
        rows = [
            (f"{c.service}|{c.instance}|{c.time_us}", c.service, c.time_us, asdict(c))
            for c in changes
        ]
        self.table.put(WEIGHT, rows)

    def weights(self, service: str, start_us: int, end_us: int) -> list[WeightChange]:
        """The weight history of ``service``'s instances in range, oldest first."""
        changes = [WeightChange(**r) for r in self.table.rows(WEIGHT, service, start_us, end_us)]
        return sorted(changes, key=lambda c: (c.time_us, c.instance))

    # -- housekeeping -----------------------------------------------------------------------
    def delete_before(self, cutoff_us: int) -> None:
        """Retention: forget rows whose window (or change) started before ``cutoff_us``."""
        self.table.delete_before(cutoff_us)

    def refresh(self) -> None:
        self.table.refresh()

    def clear(self) -> None:
        self.table.clear()

    def close(self) -> None:
        self.table.close()

    def __enter__(self) -> AnalyticsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
