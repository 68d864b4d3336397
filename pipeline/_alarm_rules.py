"""Alarm rules, as SkyWalking's ``alarm-settings``: metric, op, threshold, period, count,
silence -- checked at the edge, from a JSON file or the registry's alarms document.

A rules document (the file's content, or the ``governance/_global/alarms`` registry
document's value) maps each rule's name to its settings::

    {"rules": {
        "orders-slow": {"metric": "p99_ms", "scope": "service", "op": ">",
                        "threshold": 200, "period": 3, "count": 2, "silence": 5,
                        "include": ["orders.OrderService"],
                        "message": "{name}: p99 {value} ms > {threshold} ms"}}}

``metric`` (:data:`METRICS`), ``op`` (``>``, ``>=``, ``<``, ``<=``, ``==``) and
``threshold`` are required. ``scope``: ``service`` (default), ``instance`` or ``method``.
``period``: how many windows are looked back (default 1); ``count``: how many of them must
breach (default 1, at most ``period``); ``silence``: windows to stay quiet after the rule
fired for a scope (default ``period``, as SkyWalking's); ``min_calls``: a window with
fewer calls does not breach (default 1; thin data proves nothing); ``include`` /
``exclude``: service names the rule is limited to / spares. ``message`` may use
``{name}`` (the scope), ``{value}``, ``{threshold}``, ``{metric}``.

Every mistake is a :class:`PipelineError` with code ``BAD_ALARM_RULE`` naming the rule
and the setting (NaN or infinite thresholds, out-of-range numbers, unknown metrics, ops,
scopes or settings).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import PipelineError

__all__ = [
    "ALARMS_KEY",
    "METRICS",
    "AlarmRule",
    "load_rules",
    "parse_rules",
    "registry_rules",
]

ALARMS_KEY = "governance/_global/alarms"
"""The registry document holding alarm rules (same format as a rules file)."""

METRICS: dict[str, tuple[str, float | None]] = {
    # name: (what it is, the largest threshold that makes sense)
    "error_rate": ("errors per call, in percent", 100.0),
    "success_rate": ("successful calls per call, in percent", 100.0),
    "calls": ("calls in the window", None),
    "errors": ("failed calls in the window", None),
    "qps": ("calls per second", None),
    "p50_ms": ("median latency, ms", None),
    "p95_ms": ("95th percentile latency, ms", None),
    "p99_ms": ("99th percentile latency, ms", None),
}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
}  # fmt: skip
SCOPES = ("service", "instance", "method")
MAX_PERIOD = 1000  # windows a rule remembers per scope: bounds the evaluator's memory
MAX_RULES = 500
SETTINGS = frozenset(
    {"metric", "op", "threshold", "scope", "period", "count", "silence", "min_calls",
     "include", "exclude", "message"}
)  # fmt: skip


def _bad(rule: str, message: str) -> PipelineError:
    return PipelineError("BAD_ALARM_RULE", f"alarm rule {rule!r}: {message}")


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """One alarm rule (module docstring); construction validates it."""

    name: str
    metric: str
    op: str
    threshold: float
    scope: str = "service"
    period: int = 1
    count: int = 1
    silence: int | None = None
    min_calls: int = 1
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    message: str = ""

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name or len(name) > 200 or "|" in name:
            raise _bad(str(name), "a name is 1..200 characters, without '|'")
        if self.metric not in METRICS:
            raise _bad(name, f"unknown metric {self.metric!r}; one of {', '.join(METRICS)}")
        if self.op not in OPS:
            raise _bad(name, f"unknown op {self.op!r}; one of {' '.join(OPS)}")
        if self.scope not in SCOPES:
            raise _bad(name, f"unknown scope {self.scope!r}; one of {', '.join(SCOPES)}")
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise _bad(name, f"threshold must be a number, not {threshold!r}")
        if not math.isfinite(threshold):
            raise _bad(name, f"threshold must be finite, not {threshold}")
        top = METRICS[self.metric][1]
        if threshold < 0 or (top is not None and threshold > top):
            limit = f"0..{top:g}" if top is not None else ">= 0"
            raise _bad(name, f"threshold of {self.metric} must be {limit}, not {threshold}")
        _whole(name, "period", self.period, 1, MAX_PERIOD)
        _whole(name, "count", self.count, 1, self.period)
        _whole(name, "silence", self.silence_windows, 0, 100 * MAX_PERIOD)
        _whole(name, "min_calls", self.min_calls, 0, 10**12)
        for field in ("include", "exclude"):
            names = getattr(self, field)
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                raise _bad(name, f"{field} must be a list of service names")
        if not isinstance(self.message, str) or len(self.message) > 500:
            raise _bad(name, "message must be text of at most 500 characters")

    @property
    def silence_windows(self) -> int:
        """Windows of quiet after firing: ``silence``, or ``period`` when not set."""
        return self.period if self.silence is None else self.silence

    def applies_to(self, service: str) -> bool:
        if self.include and service not in self.include:
            return False
        return service not in self.exclude

    def breached(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def describe(self, where: str, value: float | None) -> str:
        """The alarm's message: the rule's own, or one that says what happened."""
        shown = "no data" if value is None else f"{value:g}"
        if self.message:
            fields = {"name": where, "value": shown, "threshold": f"{self.threshold:g}",
                      "metric": self.metric}  # fmt: skip
            try:
                return self.message.format(**fields)
            except (KeyError, IndexError, ValueError):
                return self.message
        return f"{where}: {self.metric} {shown} {self.op} {self.threshold:g}"


def _whole(rule: str, field: str, value: Any, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise _bad(rule, f"{field} must be a whole number within {low}..{high}, not {value!r}")


def _rule(name: str, settings: Any) -> AlarmRule:
    if not isinstance(settings, Mapping):
        raise _bad(name, "its settings must be an object")
    unknown = set(settings) - SETTINGS
    if unknown:
        raise _bad(name, f"unknown setting(s) {', '.join(sorted(map(str, unknown)))}")
    for field in ("metric", "op", "threshold"):
        if field not in settings:
            raise _bad(name, f"{field} is required")
    values = dict(settings)
    for field in ("include", "exclude"):
        if field in values:
            names = values[field]
            if isinstance(names, str) or not isinstance(names, Sequence):
                raise _bad(name, f"{field} must be a list of service names")
            values[field] = tuple(names)
    return AlarmRule(name=name, **values)


def parse_rules(document: Any) -> list[AlarmRule]:
    """The rules of a rules document (module docstring); ``None`` or ``{}``: no rules."""
    if document is None:
        return []
    if not isinstance(document, Mapping):
        raise PipelineError("BAD_ALARM_RULE", "an alarm rules document is a JSON object")
    rules = document.get("rules", {})
    if not isinstance(rules, Mapping):
        raise PipelineError("BAD_ALARM_RULE", '"rules" maps each rule\'s name to its settings')
    if len(rules) > MAX_RULES:
        raise PipelineError("BAD_ALARM_RULE", f"at most {MAX_RULES} alarm rules, not {len(rules)}")
    return [_rule(str(name), settings) for name, settings in rules.items()]


def load_rules(path: str | Path) -> list[AlarmRule]:
    """The rules in a JSON file; a missing or malformed file is a ``BAD_ALARM_RULE``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PipelineError("BAD_ALARM_RULE", f"cannot read alarm rules {path}: {err}") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except ValueError as err:
        raise PipelineError("BAD_ALARM_RULE", f"{path} is not JSON: {err}") from None
    return parse_rules(document)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number an alarm rule may use")


def registry_rules(registry: Any) -> list[AlarmRule]:
    """The rules of the registry's :data:`ALARMS_KEY` document (none when it is absent)."""
    found = registry.get_config(ALARMS_KEY)
    return parse_rules(found.value if found is not None else None)
