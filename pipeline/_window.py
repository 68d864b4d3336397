"""A time window ``[start, end)`` in microseconds since the epoch, checked at the edge."""

from __future__ import annotations

import datetime as dt
import math
from typing import NamedTuple

from ._errors import PipelineError

__all__ = ["TimeLike", "Window", "window"]

TimeLike = int | float | dt.datetime
"""Microseconds since the epoch, or an aware datetime (a naive one is taken as UTC)."""


class Window(NamedTuple):
    start_us: int
    end_us: int

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6

    def slices(self, count: int) -> list[Window]:
        """``count`` adjacent windows covering this one (fewer when it is that short)."""
        count = max(1, min(count, self.end_us - self.start_us))
        edges = [self.start_us + (self.end_us - self.start_us) * i // count for i in range(count)]
        return [Window(a, b) for a, b in zip(edges, [*edges[1:], self.end_us], strict=True)]


def _micros(value: TimeLike, name: str) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return round(value.timestamp() * 1_000_000)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PipelineError("BAD_WINDOW", f"{name} must be microseconds or a datetime")
    if not math.isfinite(value) or value < 0:
        raise PipelineError("BAD_WINDOW", f"{name} must be a finite time after 1970, not {value}")
    return int(value)


def window(start: TimeLike, end: TimeLike) -> Window:
    """``[start, end)`` as a :class:`Window`; an empty or reversed one is refused."""
    start_us, end_us = _micros(start, "start"), _micros(end, "end")
    if end_us <= start_us:
        raise PipelineError("BAD_WINDOW", f"the window ends ({end_us}) by its start ({start_us})")
    return Window(start_us, end_us)
