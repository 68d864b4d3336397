"""The traces page's search as it lives in the URL: parsed, checked, turned into a
:class:`storage.TraceQuery`, and written back as a query string that reproduces it.

Query string keys: ``service``, ``operation``, ``tags`` (``k=v`` pairs separated by
spaces), ``min_ms``, ``max_ms``, ``lookback`` (``15m`` ... ``7d``, ``all`` or ``custom``),
``start`` and ``end`` (UTC, ``YYYY-MM-DD HH:MM[:SS]``, used when ``lookback=custom``),
``errors=1`` and ``limit``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

from storage import BadQuery, TraceQuery

from ._form import query_text

__all__ = ["LIMITS", "LOOKBACKS", "SearchParams", "format_utc", "parse_utc"]

LOOKBACKS = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400, "all": None}
LIMITS = (20, 100, 500, 1000)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_UTC_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class SearchParams:
    """What the search form holds, as text, exactly as the URL carries it."""

    service: str = ""
    operation: str = ""
    tags: str = ""
    min_ms: str = ""
    max_ms: str = ""
    lookback: str = "1h"
    start: str = ""
    end: str = ""
    errors: bool = False
    limit: int = 100

    @classmethod
    def from_query(cls, query: Mapping[str, Any] | str) -> SearchParams:
        """From ``?a=b&...`` or the dict Dash hands a page layout; unknown keys are ignored."""
        text = query_text(query)
        limit = text.get("limit", "100")
        return cls(
            service=text.get("service", ""),
            operation=text.get("operation", ""),
            tags=text.get("tags", ""),
            min_ms=text.get("min_ms", ""),
            max_ms=text.get("max_ms", ""),
            lookback=text.get("lookback", "1h") or "1h",
            start=text.get("start", ""),
            end=text.get("end", ""),
            errors=text.get("errors", "") in ("1", "true", "on"),
            limit=int(limit) if limit.isdigit() and int(limit) in LIMITS else 100,
        )

    def query_string(self) -> str:
        """``?...`` with only what differs from an empty form, so links stay short."""
        fields = asdict(self)
        default = asdict(SearchParams())
        kept = {k: v for k, v in fields.items() if v != default[k] and v not in ("", None)}
        if "errors" in kept:
            kept["errors"] = "1"
        return "?" + urlencode(kept) if kept else ""

    def to_query(self, now_s: float | None = None) -> TraceQuery:
        """The store query; a bad field raises :class:`storage.BadQuery` naming it."""
        if not self.service:
            raise BadQuery("choose a service to search")
        start_min, start_max = self._time_range(time.time() if now_s is None else now_s)
        tags = TraceQuery.parse_tags(self.tags.split())
        return TraceQuery(
            self.service,
            operation=self.operation,
            tags=tags,
            min_duration_us=_duration_us("min duration", self.min_ms),
            max_duration_us=_duration_us("max duration", self.max_ms),
            start_min_us=start_min,
            start_max_us=start_max,
            errors_only=self.errors,
            limit=self.limit,
        )

    def older(self, oldest_start_us: int) -> SearchParams:
        """The next page: the same search, ending where this page's oldest trace started."""
        start = self.start
        if self.lookback != "custom":
            seconds = LOOKBACKS.get(self.lookback)
            start = "" if seconds is None else format_utc(int((time.time() - seconds) * 1e6))
        return SearchParams(**{**asdict(self), "lookback": "custom", "start": start,
                               "end": format_utc(oldest_start_us)})  # fmt: skip

    def _time_range(self, now_s: float) -> tuple[int | None, int | None]:
        if self.lookback == "custom":
            start = parse_utc("start", self.start) if self.start else None
            end = parse_utc("end", self.end) if self.end else None
            if start is not None and end is not None and end <= start:
                raise BadQuery("the end of the time range must be after its start")
            return start, end
        if self.lookback not in LOOKBACKS:
            raise BadQuery(f"lookback is one of {', '.join(LOOKBACKS)} or custom")
        seconds = LOOKBACKS[self.lookback]
        return (None if seconds is None else int((now_s - seconds) * 1e6)), None


def _duration_us(what: str, ms: str) -> int | None:
    if not ms:
        return None
    try:
        value = float(ms)
    except ValueError:
        raise BadQuery(f"{what} is a number of milliseconds, not {ms!r}") from None
    if not math.isfinite(value) or value < 0 or value > 1e12:
        raise BadQuery(f"{what} must be a finite, non-negative number of milliseconds")
    return int(value * 1000)


def parse_utc(what: str, text: str) -> int:
    """``YYYY-MM-DD HH:MM[:SS[.ffffff]]`` (UTC; a ``T`` works too) to microseconds."""
    text = text.replace("T", " ").removesuffix("Z")
    for fmt in _UTC_FORMATS:
        try:
            moment = dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return (moment - _EPOCH) // _US
    raise BadQuery(f"{what} is a UTC time like 2026-11-30 10:15:00, not {text!r}")


def format_utc(us: int) -> str:
    """Microseconds since the epoch as ``parse_utc`` reads them back exactly."""
    return (_EPOCH + us * _US).strftime("%Y-%m-%d %H:%M:%S.%f")
