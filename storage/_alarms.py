"""Alarms the pipeline's rules raised: the record, and how the AnalyticsStore keeps them.

An :class:`Alarm` is one rule's verdict on one scope (a service, an instance or a method)
in one window: ``firing`` when the rule's condition came to hold (again, after its
silence), ``resolved`` when it stopped holding. It is keyed by (rule, scope, window), so a
re-evaluated window overwrites its alarm rather than adding one.

Each alarm is written twice: under its service (kind ``alarm``) and under the pseudo
service ``""`` (kind ``alarm.all``), so that every backend answers "the newest alarms of
one service" and "the newest alarms of any service" from one contiguous, time-ordered
range (HBase keys rows by service, then time) -- newest first, a page at a time, never a
scan of the whole table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ._errors import BadQuery

if TYPE_CHECKING:
    from ._api import AnalyticsTable

__all__ = ["FIRING", "RESOLVED", "Alarm", "AlarmPage", "AlarmStoreMixin"]

FIRING, RESOLVED = "firing", "resolved"
ALARM, ALARM_ALL = "alarm", "alarm.all"
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class Alarm:
    """One rule's verdict on one scope in one window.

    ``scope`` is ``service``, ``instance`` or ``method``; ``target`` names the instance or
    the method (empty for a service). ``value`` is the metric's value in the window (None
    when the scope sent nothing in it, e.g. a resolved alarm of a silent instance).
    """

    rule: str
    scope: str
    service: str
    target: str
    window_start_us: int
    window_s: float
    state: str
    metric: str
    op: str
    threshold: float
    value: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.state not in (FIRING, RESOLVED):
            raise BadQuery(f"an alarm's state is firing or resolved, not {self.state!r}")
        if self.value is not None and not math.isfinite(self.value):
            raise BadQuery(f"alarm {self.rule}: its value must be finite, not {self.value}")

    @property
    def key(self) -> str:
        """(rule, scope, window): what makes a re-evaluated window overwrite its alarm."""
        return "|".join((self.rule, self.scope, self.service, self.target,
                         f"{self.window_start_us:020d}"))  # fmt: skip

    @property
    def where(self) -> str:
        """The scope as a person reads it: ``orders``, ``orders @ 10.0.0.7:7001``, ..."""
        return f"{self.service} @ {self.target}" if self.target else self.service


@dataclass(frozen=True, slots=True)
class AlarmPage:
    """Up to ``limit`` alarms, newest first; ``next_cursor`` asks for the page after."""

    alarms: list[Alarm]
    next_cursor: str | None


def _cursor(time_us: int, key: str) -> str:
    return f"{time_us}.{key}"


def _parse_cursor(cursor: str) -> tuple[int, str]:
    time_text, sep, key = cursor.partition(".")
    if not sep or not time_text.isdigit() or not key:
        raise BadQuery(f"not an alarm page cursor: {cursor[:80]!r}")
    return int(time_text), key


class AlarmStoreMixin:
    """The alarm reads and writes of :class:`storage.AnalyticsStore`."""

    table: AnalyticsTable

    def write_alarms(self, alarms: Iterable[Alarm]) -> None:
        """Store alarms; one per (rule, scope, window): a rewrite replaces it."""
        alarms = list(alarms)
        by_service = [(a.key, a.service, a.window_start_us, asdict(a)) for a in alarms]
        every = [(a.key, "", a.window_start_us, asdict(a)) for a in alarms]
        self.table.put(ALARM, by_service)
        self.table.put(ALARM_ALL, every)

    def alarms(
        self,
        start_us: int,
        end_us: int,
        *,
        service: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> AlarmPage:
        """Alarms whose window starts in ``[start_us, end_us)``, newest first, ``limit`` at
        a time (1..500); pass the page's ``next_cursor`` for the next one."""
        if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
            raise BadQuery(f"an alarm page holds 1..{MAX_PAGE} alarms, not {limit!r}")
        for name, value in (("start_us", start_us), ("end_us", end_us)):
            if type(value) is not int or value < 0:
                raise BadQuery(f"{name} must be a non-negative integer")
        before = _parse_cursor(cursor) if cursor else None
        kind, svc = (ALARM, service) if service else (ALARM_ALL, "")
        page: list[tuple[int, str, dict[str, Any]]] = self.table.page(
            kind, svc, start_us, end_us, limit + 1, before
        )
        alarms = [Alarm(**body) for _, _, body in page[:limit]]
        more = len(page) > limit
        last = page[limit - 1] if more else None
        return AlarmPage(alarms, _cursor(last[0], last[1]) if last else None)
