"""Condition rules: ``method = get* & consumer.zone = a => provider.zone = a``.

Left of ``=>`` says which calls the rule applies to (empty: every call), right of it
which providers they may go to (empty: none). Each side is conditions joined by
``&``; a condition is ``key = values`` or ``key != values``, values separated by
``,``, each a literal with ``*`` and ``?`` wildcards, a numeric range ``10..20``, or
a reference ``$consumer.zone`` to a fact of the call. Call keys: ``service``,
``method``, ``version``, ``group``, ``args[N]``, ``attachments.NAME``,
``consumer.NAME``; provider keys: ``address``, ``host``, ``ip``, ``port``,
``weight`` and any metadata label, with or without ``provider.``. A mistake is a
``BAD_REQUEST`` that names its position in the rule.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import BadRequestError

__all__ = ["ConditionRule", "parse_condition"]

MAX_RULE = 2000
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*(\[\d{1,2}\])?")
_CALL_ROOTS = ("service", "method", "version", "group", "args", "attachments", "consumer")


@dataclass(frozen=True, slots=True)
class Value:
    text: str
    reference: str | None = None  # "$consumer.zone": a fact of the call
    low: float | None = None
    high: float | None = None

    def matches(self, actual: Any, call: dict[str, Any]) -> bool:
        if self.reference is not None:
            return actual is not None and str(actual) == str(lookup(call, self.reference))
        if self.low is not None and self.high is not None:
            try:
                number = float(actual)
            except (TypeError, ValueError):
                return False
            return self.low <= number <= self.high
        return actual is not None and fnmatch.fnmatchcase(str(actual), self.text)


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    negated: bool
    values: tuple[Value, ...]

    def holds(self, facts: dict[str, Any], call: dict[str, Any]) -> bool:
        actual = lookup(facts, self.key)
        hit = any(value.matches(actual, call) for value in self.values)
        return not hit if self.negated else hit


def lookup(facts: dict[str, Any], key: str) -> Any:
    """``consumer.zone``, ``args[0]``, ``attachments.tag`` or a plain key; ``None`` if absent."""
    index = None
    if key.endswith("]"):
        key, _, rest = key.partition("[")
        index = int(rest[:-1])
    current: Any = facts
    for part in key.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    if index is not None:
        return current[index] if isinstance(current, list) and index < len(current) else None
    return current


@dataclass(frozen=True, slots=True)
class ConditionRule:
    """A parsed rule: ``when`` over the call, ``then`` over each provider."""

    text: str
    when: tuple[Condition, ...]
    then: tuple[Condition, ...]
    per_call: bool  # reads args or attachments: its result cannot be cached per method

    def applies(self, call: dict[str, Any]) -> bool:
        return all(c.holds(call, call) for c in self.when)

    def allows(self, provider: dict[str, Any], call: dict[str, Any]) -> bool:
        return bool(self.then) and all(c.holds(provider, call) for c in self.then)


def parse_condition(text: str) -> ConditionRule:
    if not isinstance(text, str) or len(text) > MAX_RULE:
        raise BadRequestError(f"a condition rule is a string of at most {MAX_RULE} characters")
    if text.count("=>") != 1:
        raise BadRequestError(f"condition rule, position {len(text)}: needs exactly one '=>'")
    split = text.index("=>")
    when = _side(text, 0, split, call_side=True)
    then = _side(text, split + 2, len(text), call_side=False)
    referenced = [c.key for c in when] + [
        v.reference for c in then for v in c.values if v.reference
    ]
    per_call = any(k.startswith(("args", "attachments")) for k in referenced)
    return ConditionRule(text, tuple(when), tuple(then), per_call)


def _side(text: str, start: int, end: int, *, call_side: bool) -> list[Condition]:
    conditions = []
    position = start
    for part in text[start:end].split("&"):
        if part.strip():
            conditions.append(_condition(text, position, part, call_side))
        elif text[start:end].strip():
            raise BadRequestError(f"condition rule, position {position}: empty condition")
        position += len(part) + 1
    return conditions


def _condition(text: str, offset: int, part: str, call_side: bool) -> Condition:
    negated = "!=" in part
    op = "!=" if negated else "="
    if op not in part:
        raise BadRequestError(
            f"condition rule, position {offset + len(part) - len(part.lstrip())}: "
            "expected 'key = values' or 'key != values'"
        )
    key_text, _, values_text = part.partition(op)
    key = key_text.strip()
    key_at = offset + len(key_text) - len(key_text.lstrip())
    if not _KEY.fullmatch(key):
        raise BadRequestError(f"condition rule, position {key_at}: bad key {key!r}")
    if call_side and key.split(".")[0].split("[")[0] not in _CALL_ROOTS:
        raise BadRequestError(
            f"condition rule, position {key_at}: {key!r} is not a fact of the call "
            f"(one of {', '.join(_CALL_ROOTS)})"
        )
    if not call_side and key.startswith("provider."):
        key = key[len("provider.") :]
    values_at = offset + len(key_text) + len(op)
    values = _values(values_text, values_at)
    return Condition(key, negated, tuple(values))


def _values(text: str, offset: int) -> Sequence[Value]:
    out = []
    position = offset
    for raw in text.split(","):
        value = raw.strip()
        at = position + len(raw) - len(raw.lstrip())
        position += len(raw) + 1
        if not value:
            raise BadRequestError(f"condition rule, position {at}: empty value")
        if value.startswith("$"):
            reference = value[1:]
            if not _KEY.fullmatch(reference) or reference.split(".")[0] not in _CALL_ROOTS:
                raise BadRequestError(f"condition rule, position {at}: bad reference {value!r}")
            out.append(Value(value, reference=reference))
            continue
        low, sep, high = value.partition("..")
        if sep:
            try:
                out.append(Value(value, low=float(low), high=float(high)))
            except ValueError:
                raise BadRequestError(
                    f"condition rule, position {at}: a range is two numbers, 'low..high'"
                ) from None
            continue
        out.append(Value(value))
    return out
