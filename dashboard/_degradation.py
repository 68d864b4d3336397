"""Breakers and masks as the KPIs tell them: per (role, instance, method), how often a
consumer's breakers opened, probed and closed, how many calls a fallback answered, and the
last state a window saw -- read from the ``governance.*`` counters of KPI samples, so every
consumer process reporting to the store is shown (``rpc.degrade.breaker_states()`` is one
process's own view)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dash import html

from callscope_contract import KpiSample

__all__ = ["DegradationRow", "degradation_rows", "degradation_table"]

COUNTERS = {
    "governance.breaker.open": "opened",
    "governance.breaker.half_open": "probed",
    "governance.breaker.closed": "closed",
    "governance.breaker.degraded": "fallbacks",
    "governance.mask.degraded": "masked",
}


@dataclass
class DegradationRow:
    role: str
    instance: str
    method: str
    opened: int = 0
    probed: int = 0
    closed: int = 0
    fallbacks: int = 0
    masked: int = 0
    state: str = "-"  # the breaker's last state a window saw
    changed_us: int = 0

    def add(self, sample: KpiSample) -> None:
        seen = {name: sample.counters.get(key, 0) for key, name in COUNTERS.items()}
        for name, count in seen.items():
            setattr(self, name, getattr(self, name) + count)
        state = _last_state(seen["opened"], seen["probed"], seen["closed"])
        end_us = sample.window_start_us + int(sample.window_s * 1e6)
        if state is not None and end_us >= self.changed_us:
            self.state, self.changed_us = state, end_us


def _last_state(opened: int, probed: int, closed: int) -> str | None:
    if opened and closed:
        return "changing"  # opened and closed within one window: flapping
    if opened:
        return "open"
    if closed:
        return "closed"
    return "half_open" if probed else None


def degradation_rows(samples: Iterable[KpiSample]) -> list[DegradationRow]:
    """One row per (role, instance, method) whose samples carry a breaker or mask counter."""
    rows: dict[tuple[str, str, str], DegradationRow] = {}
    for sample in sorted(samples, key=lambda s: s.window_start_us):
        if not any(key in sample.counters for key in COUNTERS):
            continue
        key = (sample.role, sample.instance, sample.method)
        row = rows.get(key)
        if row is None:
            row = rows[key] = DegradationRow(*key)
        row.add(sample)
    return sorted(rows.values(), key=lambda r: (r.role, r.instance, r.method))


def degradation_table(rows: list[DegradationRow]) -> Any:
    if not rows:
        return html.P("No breaker opened and no call was degraded.", className="empty")
    names = ("role", "instance", "method", "breaker", "since", "opened", "probed", "closed",
             "fallbacks", "masked")  # fmt: skip
    body = [
        html.Tr([html.Td(r.role), html.Td(r.instance), html.Td(r.method),
                 html.Td(r.state, className=f"breaker-{r.state}"), html.Td(_time(r.changed_us)),
                 *(html.Td(getattr(r, n)) for n in names[5:])])
        for r in rows
    ]  # fmt: skip
    return html.Table([html.Tr([html.Th(n) for n in names]), *body], className="top breakers")


def _time(us: int) -> str:
    if not us:
        return "-"
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
