"""Dynamic flow control: resource factors, averaged, put the provider in a tier with its limits.

Factors are sampled every ``interval`` seconds from the host and the process
(``cpu`` and ``memory`` of the host, ``process_cpu`` of this process, all in
percent; ``loop_lag_ms``, how late the sampler's own timer fired; ``backlog``,
calls queued behind the bulkheads; ``inflight``, calls admitted) and averaged
over the last ``window`` samples, so one spike does not switch anything. The
tier is the highest whose threshold some average reaches (normal → warning →
critical); it steps down only once every average is ``hysteresis`` below the
thresholds of the tier it leaves. Each tier has its own ``max_inflight``: a
:class:`DynamicFlow` is an admission :class:`~rpc.flow.Gate` that sheds (BUSY)
beyond it.

A tier change is logged, counted (``changes``), handed to listeners, and lands
as a ``flow.tier`` event on the next server span of each service (with a KPI
counter of the same name).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import BusyError
from .._invocation import CallNext, Invocation
from ..cluster._tally import DECISIONS

if TYPE_CHECKING:
    from .._server import Server

__all__ = ["FACTORS", "TIERS", "DynamicFlow", "TierRules"]

log = logging.getLogger("callscope.rpc")

TIERS = ("normal", "warning", "critical")
FACTORS = ("cpu", "process_cpu", "memory", "loop_lag_ms", "backlog", "inflight")


def _finite(where: str, value: Any, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, not {value!r}")
    if value < low:
        raise ValueError(f"{where} must be at least {low}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class TierRules:
    """Thresholds per factor (``{factor: [warning, critical]}``) and each tier's limit.

    ``limits`` maps a tier to the calls admitted at once while in it (``None``: no
    extra limit); ``normal`` usually has none.
    """

    thresholds: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {"cpu": (80.0, 95.0), "loop_lag_ms": (50.0, 200.0)}
    )
    limits: Mapping[str, int | None] = field(
        default_factory=lambda: {"normal": None, "warning": 256, "critical": 32}
    )
    hysteresis: float = 0.1

    def __post_init__(self) -> None:
        for name, pair in self.thresholds.items():
            if name not in FACTORS:
                raise ValueError(f"unknown factor {name!r}; known: {', '.join(FACTORS)}")
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"thresholds of {name!r} are [warning, critical]")
            warning, critical = (_finite(f"threshold of {name!r}", v) for v in pair)
            if warning > critical:
                raise ValueError(f"the warning threshold of {name!r} is above its critical one")
        for tier, limit in self.limits.items():
            if tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; known: {', '.join(TIERS)}")
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
            ):
                raise ValueError(f"the limit of tier {tier!r} must be null or an integer >= 1")
        if not 0 <= _finite("hysteresis", self.hysteresis) < 1:
            raise ValueError("hysteresis must be in [0, 1)")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TierRules:
        """Read ``{"thresholds": {...}, "limits": {...}, "hysteresis": 0.1}`` (validated)."""
        if not isinstance(doc, Mapping):
            raise ValueError("tier rules must be a map")
        unknown = set(doc) - {"thresholds", "limits", "hysteresis"}
        if unknown:
            raise ValueError(f"unknown tier rule keys {sorted(unknown)}")
        thresholds = doc.get("thresholds", cls().thresholds)
        limits = doc.get("limits", cls().limits)
        if not isinstance(thresholds, Mapping) or not isinstance(limits, Mapping):
            raise ValueError("thresholds and limits are maps")
        return cls(
            {k: tuple(v) if isinstance(v, list) else v for k, v in thresholds.items()},
            dict(limits),
            doc.get("hysteresis", 0.1),
        )

    def tier_of(self, averages: Mapping[str, float], current: str) -> str:
        """The tier ``averages`` call for, stepping down only past the hysteresis margin."""
        level = 0
        for name, (warning, critical) in self.thresholds.items():
            value = averages.get(name, 0.0)
            level = max(level, 2 if value >= critical else 1 if value >= warning else 0)
        now = TIERS.index(current)
        if level >= now:
            return TIERS[level]
        keep = 1 - self.hysteresis  # leaving `now` needs every factor well below its threshold
        for name, pair in self.thresholds.items():
            if averages.get(name, 0.0) >= pair[now - 1] * keep:
                return current
        return TIERS[level]


class DynamicFlow:
    """Samples factors on the server's loop and sheds beyond the current tier's limit.

    Give it to a server with :meth:`attach` (it adds itself as a gate and an
    interceptor, and samples while the server serves).
    """

    def __init__(
        self, rules: TierRules | None = None, *, interval: float = 0.5, window: int = 4
    ) -> None:
        self.rules = rules or TierRules()
        self.interval = _finite("interval", interval, 0.01)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, not {window!r}")
        self.window = window
        self.tier = "normal"
        self.limit: int | None = self.rules.limits.get("normal")
        self.changes = 0
        self.shed = 0
        self.averages: dict[str, float] = {}
        self.listeners: list[Callable[[str, str, Mapping[str, float]], None]] = []
        self._samples: deque[dict[str, float]] = deque(maxlen=window)
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._unannounced: set[str] = set()  # services whose next span gets the tier event
        import psutil

        self._psutil = psutil
        self._process = psutil.Process()

    # -- wiring ---------------------------------------------------------------
    def attach(self, server: Server) -> DynamicFlow:
        """Guard ``server``: a gate, an interceptor (for the events), sampling while it serves."""
        self._server = server
        server.add_gate(self)
        server.add_interceptor(self._announce)
        server.on_start(self.start)
        return self

    def start(self, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
        """Sample on ``loop`` until the returned callable (or :meth:`stop`) is called."""
        if self._task is None or self._task.done():
            self._psutil.cpu_percent(None)  # the first reading of each only sets the baseline
            self._process.cpu_percent(None)
            self._task = loop.create_task(self._sample_forever())
        return self.stop

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def configure(self, rules: TierRules) -> None:
        """New rules, live: the tier is judged again at the next sample."""
        self.rules = rules
        self.limit = rules.limits.get(self.tier)

    # -- the gate ---------------------------------------------------------------
    def admit(self, service: str, method: str, principal: Any, /) -> None:
        limit = self.limit
        if limit is not None and self._server is not None:
            inflight = self._server.concurrency.inflight
            if inflight >= limit:
                self.shed += 1
                raise BusyError(
                    f"provider is in tier {self.tier} ({self._reason()}): "
                    f"{inflight} calls in flight, {limit} at most"
                )

    async def _announce(self, inv: Invocation, call_next: CallNext) -> Any:
        if self._unannounced and inv.service in self._unannounced:
            self._unannounced.discard(inv.service)
            inv.add_event("flow.tier", tier=self.tier, factors=self._reason())
            DECISIONS.add(inv.service, inv.local, inv.method, "flow.tier")
        return await call_next(inv)

    # -- sampling ----------------------------------------------------------------
    def sample(self, lag_ms: float = 0.0) -> dict[str, float]:
        """One reading of every factor."""
        server = self._server
        concurrency = server.concurrency if server is not None else None
        return {
            "cpu": self._psutil.cpu_percent(None),
            "process_cpu": self._process.cpu_percent(None),
            "memory": self._psutil.virtual_memory().percent,
            "loop_lag_ms": lag_ms,
            "backlog": float(sum(h.queued for h in concurrency.bulkheads.values()))
            if concurrency
            else 0.0,
            "inflight": float(concurrency.inflight) if concurrency else 0.0,
        }

    def observe(self, sample: Mapping[str, float]) -> str:
        """Add a sample, re-average, switch tier if the averages say so; returns the tier."""
        self._samples.append(dict(sample))
        count = len(self._samples)
        self.averages = {
            name: sum(s.get(name, 0.0) for s in self._samples) / count for name in FACTORS
        }
        tier = self.rules.tier_of(self.averages, self.tier)
        if tier != self.tier:
            self._switch(tier)
        return self.tier

    async def _sample_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            lag_ms = max(0.0, (loop.time() - expected) * 1000)
            try:
                self.observe(self.sample(lag_ms))
            except Exception:  # a factor that cannot be read must not stop the others
                log.exception("callscope: sampling flow factors failed")

    def _switch(self, tier: str) -> None:
        old, self.tier = self.tier, tier
        self.limit = self.rules.limits.get(tier)
        self.changes += 1
        reason = self._reason()
        log.warning("callscope: flow tier %s -> %s (%s)", old, tier, reason)
        if self._server is not None:
            self._unannounced = {spec.name for spec in self._server.services()}
        for listener in list(self.listeners):
            try:
                listener(old, tier, dict(self.averages))
            except Exception:
                log.exception("callscope: a flow tier listener raised")

    def _reason(self) -> str:
        return ", ".join(
            f"{name} {self.averages.get(name, 0.0):.1f}" for name in self.rules.thresholds
        )
