"""Alarms in every backend: one per (rule, scope, window), newest first, a page at a time."""

from __future__ import annotations

import math

import pytest

from storage import FIRING, RESOLVED, Alarm, AnalyticsStore, BadQuery

from .spans import BASE_US

W = 10_000_000  # a 10 s window


def alarm(window: int, service: str = "orders", target: str = "", state: str = FIRING,
          rule: str = "slow", value: float | None = 250.0) -> Alarm:  # fmt: skip
    scope = "instance" if target else "service"
    return Alarm(rule, scope, service, target, BASE_US + window * W, 10.0, state, "p99_ms",
                 ">", 200.0, value, f"{service} is slow")  # fmt: skip


def all_pages(analytics: AnalyticsStore, limit: int, **kw: object) -> list[list[Alarm]]:
    pages, cursor = [], None
    for _ in range(50):
        page = analytics.alarms(BASE_US, BASE_US + 100 * W, limit=limit, cursor=cursor, **kw)  # type: ignore[arg-type]
        pages.append(page.alarms)
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("the pages never ended")


def test_alarms_are_kept_once_per_rule_scope_and_window_and_paged_newest_first(
    analytics: AnalyticsStore,
) -> None:
    written = [alarm(w, s, t) for w in range(4) for s in ("orders", "stock")
               for t in ("", "10.0.0.1:7001", "10.0.0.2:7001")]  # fmt: skip
    analytics.write_alarms(written)
    analytics.write_alarms(written[:5])  # a re-evaluated window: the same keys
    resolved = alarm(3, "orders", state=RESOLVED, value=None)
    analytics.write_alarms([resolved])  # the window's verdict changed: it replaces
    analytics.refresh()

    pages = all_pages(analytics, limit=5)
    seen = [a for page in pages for a in page]
    assert [len(p) for p in pages] == [5, 5, 5, 5, 4]
    assert len(seen) == 24 and len({a.key for a in seen}) == 24
    times = [a.window_start_us for a in seen]
    assert times == sorted(times, reverse=True)
    assert resolved in seen and alarm(3, "orders") not in seen

    orders = [a for page in all_pages(analytics, limit=2, service="orders") for a in page]
    assert len(orders) == 12 and {a.service for a in orders} == {"orders"}
    assert [a.window_start_us for a in orders] == sorted(times[::2], reverse=True)

    recent = analytics.alarms(BASE_US + 2 * W, BASE_US + 3 * W, service="stock", limit=10)
    assert recent.next_cursor is None
    assert {a.window_start_us for a in recent.alarms} == {BASE_US + 2 * W}
    assert len(recent.alarms) == 3

    analytics.delete_before(BASE_US + 2 * W)
    analytics.refresh()
    assert len(analytics.alarms(0, BASE_US + 100 * W, limit=100).alarms) == 12


def test_bad_pages_and_alarms_are_refused_with_a_code(analytics: AnalyticsStore) -> None:
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "nonsense"}):
        with pytest.raises(BadQuery) as caught:
            analytics.alarms(0, 10, **bad)  # type: ignore[arg-type]
        assert caught.value.code == "BAD_REQUEST"
    with pytest.raises(BadQuery):
        alarm(0, value=math.nan)
    with pytest.raises(BadQuery):
        alarm(0, state="maybe")
