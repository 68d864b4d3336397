"""The waterfall's pieces: rows, folding, governance marks, and labels that stay text."""

from __future__ import annotations

import json
import random

from callscope_contract import SpanEvent
from dashboard._waterfall import ROW_PX, TOP_PX, is_governance_event, waterfall
from dashboard._waterfall_html import governance_events, waterfall_labels
from storage import Trace
from tests.dashboard.seed import make_trace


def _trace(spans: int = 12) -> Trace:
    made = make_trace(random.Random(3), 1_764_150_000_000_000, spans, error=True)
    return Trace(made[0].trace_id, made)


def test_rows_line_up_with_bars_and_fold_under_their_parent() -> None:
    trace = _trace()
    drawn = waterfall(trace)
    assert len(drawn.rows) == 12
    assert drawn.figure["layout"]["height"] == TOP_PX + 12 * ROW_PX + 10
    assert drawn.figure["layout"]["yaxis"]["range"] == [11.5, -0.5]  # one row per bar, in order
    parent = next(r for r in drawn.rows[1:] if r.text.startswith("▾ "))
    folded = waterfall(trace, {parent.span_id}, selected=parent.span_id)
    assert len(folded.rows) < 12
    row = next(r for r in folded.rows if r.span_id == parent.span_id)
    assert row.text.startswith("▸ ") and row.selected


def test_governance_events_are_told_from_other_events() -> None:
    for name in ("retry", "failover.retry", "failsafe.ignore", "failcache.enqueue",
                 "breaker.open", "limit.rejected", "weight.changed", "weights.applied",
                 "flow.rejected", "flow.tier", "quota.rejected", "mask.degraded",
                 "breaker.degraded", "breaker.half_open", "route.filtered"):  # fmt: skip
        assert is_governance_event(name), name
    for name in ("exception", "message", "cache.miss"):
        assert not is_governance_event(name), name


def test_a_span_name_is_shown_as_text_never_as_html() -> None:
    trace = _trace(2)
    trace.spans[1].name = '<img src=x onerror="alert(1)">'
    labels = waterfall_labels(waterfall(trace)).children
    assert "<img" not in labels and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in labels


def test_a_trace_lists_its_governance_decisions_in_time_order() -> None:
    trace = _trace(3)
    root, child = trace.spans[0], trace.spans[1]
    child.events = [
        SpanEvent(child.start_us + 50, "message", {"size": 3}),
        SpanEvent(child.start_us + 20, "failover.retry", {"attempt": 2, "error.code": "TIMEOUT"}),
    ]
    root.events = [SpanEvent(child.start_us + 900, "failsafe.ignore", {})]
    text = json.dumps(governance_events(trace), default=lambda c: c.to_plotly_json())
    assert "Governance decisions (2)" in text and "message" not in text
    assert text.index("failover.retry") < text.index("failsafe.ignore")
    assert "attempt=2, error.code=TIMEOUT" in text
    quiet = _trace(2)
    for span in quiet.spans:
        span.events = []
    assert "No governance decision" in json.dumps(governance_events(quiet),
                                                  default=lambda c: c.to_plotly_json())  # fmt: skip
