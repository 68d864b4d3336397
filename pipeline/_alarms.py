"""Evaluating alarm rules window by window: pure Python, no Spark, no I/O.

The pipeline's per-window KPI rollups (:func:`observations`) are what rules look at:
the streaming job's per-instance samples, the batch job's per-service and per-method
ones. A stream has no service-level sample, so a service's is made from its instances:
calls and errors add up exactly; a percentile is the worst instance's (a service's p99
cannot be rebuilt from its instances' -- the worst is an upper bound, so an alarm on it
errs on the side of firing).

For each rule and scope the :class:`AlarmEvaluator` remembers whether each of the last
``period`` windows breached (a window the scope sent nothing in, or fewer than
``min_calls`` calls, does not). Then, as SkyWalking does:

* **fires** when at least ``count`` of them breached and the scope is not silenced; it
  then stays quiet for ``silence`` windows -- firing again after them if the condition
  still holds;
* **resolves** (once) when the condition stops holding after it fired.

Windows are taken in order, per rule and scope; a window at or before the last one
evaluated (a replayed micro-batch) is skipped, and the store keeps its first verdict
(alarms are keyed by rule, scope and window). Skipped windows (no data at all) count as
not breaching.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from callscope_contract import KpiSample
from storage import FIRING, RESOLVED, Alarm

from ._alarm_rules import AlarmRule

__all__ = ["AlarmEvaluator", "Observation", "observations"]

log = logging.getLogger("callscope.pipeline.alarms")


@dataclass(frozen=True, slots=True)
class Observation:
    """One scope's numbers in one window."""

    scope: str  # service, instance or method
    service: str
    target: str  # the instance or the method; "" for a service
    calls: int
    errors: int
    window_s: float
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0

    def value(self, metric: str) -> float | None:
        """The metric's value; None when it has none (a rate or latency of no calls)."""
        if metric == "calls":
            return float(self.calls)
        if metric == "errors":
            return float(self.errors)
        if metric == "qps":
            return round(self.calls / self.window_s, 3) if self.window_s > 0 else None
        if not self.calls:
            return None
        if metric == "error_rate":
            return round(100.0 * self.errors / self.calls, 3)
        if metric == "success_rate":
            return round(100.0 * (self.calls - self.errors) / self.calls, 3)
        return float(getattr(self, metric))


def _latency(sample: KpiSample, q: str) -> float:
    value = sample.latency_ms.get(q, 0.0)
    return float(value) if isinstance(value, (int, float)) else 0.0


def observations(samples: Iterable[KpiSample]) -> dict[int, list[Observation]]:
    """The scopes the samples show, by window start (module docstring)."""
    out: dict[int, dict[tuple[str, str, str], Observation]] = {}
    from_instances: dict[tuple[int, str], list[KpiSample]] = {}
    for s in samples:
        q = {f"{k}_ms": _latency(s, k) for k in ("p50", "p95", "p99")}
        if s.method and s.method != "*":
            scope, target = "method", s.method
        elif s.instance:
            scope, target = "instance", s.instance
            from_instances.setdefault((s.window_start_us, s.service), []).append(s)
        else:
            scope, target = "service", ""
        seen = out.setdefault(s.window_start_us, {})
        seen[(scope, s.service, target)] = Observation(
            scope, s.service, target, s.count, s.errors, s.window_s, **q
        )
    for (start_us, service), parts in from_instances.items():
        seen = out[start_us]
        if ("service", service, "") in seen:  # the batch's own service sample wins
            continue
        worst = {f"{k}_ms": max(_latency(p, k) for p in parts) for k in ("p50", "p95", "p99")}
        seen[("service", service, "")] = Observation(
            "service", service, "", sum(p.count for p in parts), sum(p.errors for p in parts),
            parts[0].window_s, **worst,
        )  # fmt: skip
    return {start: list(seen.values()) for start, seen in out.items()}


@dataclass
class _State:
    history: deque[bool]
    last_us: int
    firing: bool = False
    quiet_until_us: int = -1  # windows starting before this are silenced


Key = tuple[str, str, str, str]  # rule, scope, service, target


class AlarmEvaluator:
    """The rules' memory across windows; :meth:`evaluate` one window at a time, in order."""

    def __init__(self, rules: Sequence[AlarmRule] = ()) -> None:
        self.rules: dict[str, AlarmRule] = {}
        self._states: dict[Key, _State] = {}
        self.set_rules(rules)

    def set_rules(self, rules: Sequence[AlarmRule]) -> None:
        """Use ``rules`` from now on; a changed or removed rule forgets its memory."""
        new = {r.name: r for r in rules}
        kept = {name for name, rule in new.items() if self.rules.get(name) == rule}
        self._states = {k: v for k, v in self._states.items() if k[0] in kept}
        self.rules = new

    def resume(self, alarms: Iterable[Alarm], window_s: float) -> None:
        """Pick up where a previous run left off (a restarted stream): the newest stored
        alarm per rule and scope says whether it is firing and silenced."""
        newest: dict[Key, Alarm] = {}
        for a in alarms:
            key = (a.rule, a.scope, a.service, a.target)
            if a.rule in self.rules and (
                key not in newest or a.window_start_us > newest[key].window_start_us
            ):
                newest[key] = a
        for key, a in newest.items():
            rule = self.rules[a.rule]
            if a.state != FIRING or key in self._states:
                continue
            history = deque([True] * rule.count, maxlen=rule.period)
            quiet = a.window_start_us + (rule.silence_windows + 1) * int(window_s * 1e6)
            self._states[key] = _State(history, a.window_start_us, True, quiet)

    def evaluate(
        self, window_start_us: int, window_s: float, seen: Sequence[Observation]
    ) -> list[Alarm]:
        """The alarms window ``window_start_us`` raises or resolves, given what it saw."""
        window_us = int(window_s * 1_000_000)
        raised = []
        for rule in self.rules.values():
            found = {(o.service, o.target): o for o in seen
                     if o.scope == rule.scope and rule.applies_to(o.service)}  # fmt: skip
            keys = {(rule.name, rule.scope, *where) for where in found}
            keys |= {k for k in self._states if k[0] == rule.name}
            for key in sorted(keys):
                alarm = self._step(rule, key, found.get(key[2:]), window_start_us, window_us)
                if alarm is not None:
                    raised.append(alarm)
        return raised

    def _step(
        self, rule: AlarmRule, key: Key, seen: Observation | None, start_us: int, window_us: int
    ) -> Alarm | None:
        state = self._states.get(key)
        if state is None:
            state = _State(deque(maxlen=rule.period), start_us - window_us)
            self._states[key] = state
        if start_us <= state.last_us:
            return None  # evaluated already (a replayed window)
        missed = (start_us - state.last_us) // max(window_us, 1) - 1
        state.history.extend([False] * min(max(missed, 0), rule.period))
        value = seen.value(rule.metric) if seen is not None else None
        enough = seen is not None and seen.calls >= rule.min_calls
        state.history.append(enough and value is not None and rule.breached(value))
        state.last_us = start_us
        holds = sum(state.history) >= rule.count
        verdict = None
        if holds and start_us >= state.quiet_until_us:
            verdict = FIRING
            state.firing = True
            state.quiet_until_us = start_us + (rule.silence_windows + 1) * window_us
        elif not holds and state.firing:
            verdict = RESOLVED
            state.firing = False
        if (
            not state.firing
            and not any(state.history)
            and start_us + window_us >= state.quiet_until_us
        ):
            del self._states[key]  # nothing to remember: memory stays bounded by live scopes
        if verdict is None:
            return None
        _, scope, service, target = key
        where = f"{service} @ {target}" if target else service
        alarm = Alarm(rule.name, scope, service, target, start_us, window_us / 1e6, verdict,
                      rule.metric, rule.op, float(rule.threshold), value,
                      rule.describe(where, value))  # fmt: skip
        level = logging.WARNING if verdict == FIRING else logging.INFO
        log.log(level, "alarm %s %s: %s", verdict, rule.name, alarm.message)
        return alarm
