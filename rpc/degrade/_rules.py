"""Breaker rules and fallbacks as data: parsed once, validated at the edge.

A rule arrives as a plain mapping (code, a file, provider metadata or a registry
document) and is refused with a :class:`~rpc.BadRequestError` naming the field
(``breaker.error_ratio: ...``) when a consumer could not use it: unknown keys,
NaN, infinities, negative or out-of-range numbers, unknown error codes.

A fallback is what a degraded call answers instead of the provider::

    "null"                                   return None
    {"action": "value", "value": 0}          return a default value
    {"action": "throw", "code": "BUSY"}      raise that error code (default UNAVAILABLE)
    {"action": "mock", "mock": "name"}       call the same method on a local mock: the
                                             ``mocks`` extension named so (default: the
                                             service's name)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callscope_contract import ERROR_CODES

from .._errors import BadRequestError

__all__ = ["ACTIONS", "COUNTED_BY_DEFAULT", "BreakerRules", "Fallback"]

ACTIONS = ("null", "value", "throw", "mock")
COUNTED_BY_DEFAULT = ("UNAVAILABLE", "TIMEOUT", "INTERNAL", "BUSY")
_FALLBACK_KEYS = frozenset({"action", "value", "code", "message", "mock"})


@dataclass(frozen=True, slots=True)
class Fallback:
    """What a degraded call answers: see the module's docstring. ``function`` (code only,
    :func:`rpc.degrade.guarded`) is called with the call's arguments instead."""

    action: str = "throw"
    value: Any = None
    code: str = "UNAVAILABLE"
    message: str = ""
    mock: Any = None
    function: Callable[..., Any] | None = None

    @staticmethod
    def parse(spec: Any, where: str = "fallback") -> Fallback:
        if isinstance(spec, Fallback):
            return spec
        if isinstance(spec, str):
            spec = {"action": spec}
        if not isinstance(spec, Mapping):
            raise BadRequestError(
                f"{where}: a fallback is an action name or a map, not {spec!r:.80}"
            )
        unknown = sorted(set(spec) - _FALLBACK_KEYS)
        if unknown:
            raise BadRequestError(
                f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(_FALLBACK_KEYS))}"
            )
        action = spec.get("action", "throw")
        if action not in ACTIONS:
            raise BadRequestError(f"{where}.action: one of {', '.join(ACTIONS)}, not {action!r}")
        code = spec.get("code", "UNAVAILABLE")
        if code not in ERROR_CODES:
            raise BadRequestError(f"{where}.code: an error code ({', '.join(sorted(ERROR_CODES))})")
        message = spec.get("message", "")
        if not isinstance(message, str) or len(message) > 1000:
            raise BadRequestError(f"{where}.message: a string of at most 1000 characters")
        mock = spec.get("mock")
        if mock is not None and isinstance(mock, str) and not mock.strip():
            raise BadRequestError(f"{where}.mock: the name of a registered mock")
        _check_plain(spec.get("value"), f"{where}.value")
        return Fallback(action, spec.get("value"), code, message, mock)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.action == "value":
            out["value"] = self.value
        if self.action == "throw":
            out["code"] = self.code
            if self.message:
                out["message"] = self.message
        if self.action == "mock" and self.mock is not None:
            out["mock"] = self.mock if isinstance(self.mock, str) else _name(self.mock)
        return out


@dataclass(frozen=True, slots=True)
class BreakerRules:
    """When a breaker opens, how long it stays open, and how it closes again.

    Over a rolling ``window`` (seconds, in ``buckets`` slices), once at least
    ``min_calls`` calls ended: it opens when the share of failures reaches
    ``error_ratio``, or the share of calls slower than ``slow_call`` seconds reaches
    ``slow_ratio``; it also opens when ``error_count`` failures are in the window
    (whatever the number of calls). A failure is an error whose code is in ``errors``.
    After ``open_for`` seconds it turns half-open and admits ``probes`` calls (others
    are refused); it closes once ``probes_to_close`` of them succeed (default: all),
    and opens again as soon as that can no longer happen. Probes that never report
    free their places after ``open_for``. A refused call gets ``fallback``; with
    ``on_error``, so does each counted failure.
    """

    window: float = 10.0
    buckets: int = 10
    min_calls: int = 10
    error_ratio: float | None = 0.5
    slow_ratio: float | None = None
    slow_call: float = 1.0
    error_count: int | None = None
    open_for: float = 5.0
    probes: int = 3
    probes_to_close: int | None = None
    errors: frozenset[str] = frozenset(COUNTED_BY_DEFAULT)
    fallback: Fallback = field(default_factory=Fallback)
    on_error: bool = False

    @property
    def needed(self) -> int:
        """Successful probes that close the breaker."""
        return self.probes if self.probes_to_close is None else self.probes_to_close

    @staticmethod
    def parse(spec: Any, where: str = "breaker") -> BreakerRules:
        if isinstance(spec, BreakerRules):
            return spec
        if not isinstance(spec, Mapping):
            raise BadRequestError(f"{where}: breaker rules are a map, not {spec!r:.80}")
        unknown = sorted(set(spec) - _RULE_KEYS)
        if unknown:
            raise BadRequestError(
                f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(_RULE_KEYS))}"
            )
        values: dict[str, Any] = {}
        for name, value in spec.items():
            values[name] = _check_rule(name, value, f"{where}.{name}")
        rules = BreakerRules(**values)
        if rules.needed > rules.probes:
            raise BadRequestError(f"{where}.probes_to_close: at most probes ({rules.probes})")
        if rules.error_ratio is None and rules.slow_ratio is None and rules.error_count is None:
            raise BadRequestError(f"{where}: give error_ratio, slow_ratio or error_count")
        return rules


_RULE_KEYS = frozenset(BreakerRules.__dataclass_fields__)
_POSITIVE = ("window", "slow_call", "open_for")
_RATIOS = ("error_ratio", "slow_ratio")
_COUNTS = {"buckets": (1, 100), "min_calls": (1, 1_000_000), "probes": (1, 1000),
           "probes_to_close": (1, 1000), "error_count": (1, 1_000_000)}  # fmt: skip


def _check_rule(name: str, value: Any, where: str) -> Any:
    if name in _POSITIVE:
        number = _number(value, where)
        if number <= 0 or number > 86_400:
            raise BadRequestError(f"{where}: seconds in (0, 86400], not {value!r}")
        return number
    if name in _RATIOS:
        if value is None:
            return None
        number = _number(value, where)
        if not 0 < number <= 1:
            raise BadRequestError(f"{where}: a ratio in (0, 1], not {value!r}")
        return number
    if name in _COUNTS:
        if value is None and name in ("probes_to_close", "error_count"):
            return None
        low, high = _COUNTS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise BadRequestError(f"{where}: an integer in {low}..{high}, not {value!r}")
        return value
    if name == "errors":
        if (
            not isinstance(value, (list, tuple, set, frozenset))
            or not value
            or not all(code in ERROR_CODES for code in value)
        ):
            raise BadRequestError(f"{where}: a non-empty list of error codes")
        return frozenset(value)
    if name == "on_error":
        if not isinstance(value, bool):
            raise BadRequestError(f"{where}: true or false, not {value!r}")
        return value
    return Fallback.parse(value, where)  # fallback


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequestError(f"{where}: a finite number, not {value!r}")
    return float(value)


def _check_plain(value: Any, where: str, depth: int = 0) -> None:
    """A default value travels as plain data: no NaN or infinities, bounded nesting."""
    if depth > 16:
        raise BadRequestError(f"{where}: nested too deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequestError(f"{where}: a finite number, not {value!r}")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_plain(item, where, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where, depth + 1)


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__
