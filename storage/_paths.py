"""Call paths and critical-path shares: the batch job's trace-level results, and how the
AnalyticsStore keeps them.

A :class:`DependencyPath` is an indirect dependency: the chain of services a call went
through, from the trace's first caller to the callee (``gateway > orders > billing``),
with how many calls took it in one window. A :class:`CriticalShare` is how much of the
window's traces' critical paths (the stretches each trace waited on, ``critical_path``)
was spent in one service. Both are stored like the dependency edges: by natural key and
window (a re-run window overwrites itself), under the path's first service and the
service, so every backend answers a time range with one range read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._api import AnalyticsTable

__all__ = ["PATH_SEPARATOR", "CriticalShare", "DependencyPath", "PathStoreMixin"]

PATH, CRITICAL = "path", "critical"
PATH_SEPARATOR = " > "


@dataclass(frozen=True, slots=True)
class DependencyPath:
    """Calls that went ``services[0] > ... > services[-1]`` (three services or more)."""

    services: tuple[str, ...]
    window_start_us: int
    window_s: float
    calls: int
    errors: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", tuple(self.services))  # a list from a store

    @property
    def text(self) -> str:
        return PATH_SEPARATOR.join(self.services)


@dataclass(frozen=True, slots=True)
class CriticalShare:
    """``service``'s part of the critical paths of the traces that began in one window.

    ``critical_ms``: the time, summed over the window's traces, that their critical paths
    spent in the service; ``share``: that over all their critical paths' time; ``traces``:
    how many traces had the service on their critical path (of ``window_traces``).
    """

    service: str
    window_start_us: int
    window_s: float
    critical_ms: float
    share: float
    traces: int
    window_traces: int


class PathStoreMixin:
    """The AnalyticsStore's part for paths and critical-path shares."""

    table: AnalyticsTable

    def write_paths(self, paths: Iterable[DependencyPath]) -> None:
        rows = [
            (f"{p.text}|{p.window_start_us}|{p.window_s}", p.services[0], p.window_start_us,
             {**asdict(p), "services": list(p.services)})
            for p in paths
        ]  # fmt: skip
        self.table.put(PATH, rows)

    def paths(self, start_us: int, end_us: int, origin: str | None = None) -> list[DependencyPath]:
        """Paths of the windows starting in ``[start_us, end_us)`` (that begin at
        ``origin``, if given), most calls first."""
        found = [DependencyPath(**r) for r in self.table.rows(PATH, origin, start_us, end_us)]
        return sorted(found, key=lambda p: (p.window_start_us, -p.calls, p.services))

    def write_critical_shares(self, shares: Iterable[CriticalShare]) -> None:
        rows = [
            (f"{s.service}|{s.window_start_us}|{s.window_s}", s.service, s.window_start_us,
             asdict(s))
            for s in shares
        ]  # fmt: skip
        self.table.put(CRITICAL, rows)

    def critical_shares(
        self, start_us: int, end_us: int, service: str | None = None
    ) -> list[CriticalShare]:
        """Shares of the windows starting in ``[start_us, end_us)``, largest first."""
        found = [CriticalShare(**r) for r in self.table.rows(CRITICAL, service, start_us, end_us)]
        return sorted(found, key=lambda s: (s.window_start_us, -s.share, s.service))
