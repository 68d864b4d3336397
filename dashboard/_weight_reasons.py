"""Why a call was balanced as it was: the pipeline's weight changes behind a trace's
``weights.applied`` events.

A consumer records ``weights.applied`` on the first CLIENT span it balances with a new
``governance/<service>/weights`` document. The changes that made that document are
stored by the pipeline as ``storage.WeightChange``s with their reasons; the newest
batch of them at or before the event (one feedback step writes all its changes at one
time) is what the call was balanced by. One bounded analytics read per service the trace
applied weights for; when the analytics store is down the trace page shows the events
without their reasons.
"""

from __future__ import annotations

import functools

from storage import AnalyticsStore, Trace, WeightChange

from ._problem import EXPECTED
from ._sources import Sources

__all__ = ["WEIGHTS_APPLIED", "Reasons", "weight_reasons"]

WEIGHTS_APPLIED = "weights.applied"
LOOKBACK_US = 15 * 60 * 1_000_000  # a document older than this is not explained
MAX_SERVICES = 20

Reasons = dict[tuple[str, int], list[WeightChange]]
"""(span id, event time) -> the weight changes the event applied."""


def _rpc_service(name: str, attributes: dict) -> str:
    service = attributes.get("rpc.service")
    return service if isinstance(service, str) and service else name.split("/", 1)[0]


def _changes(
    analytics: AnalyticsStore, *, service: str, start_us: int, end_us: int
) -> list[WeightChange]:
    return analytics.weights(service, start_us, end_us)


def weight_reasons(sources: Sources, trace: Trace) -> Reasons:
    """The weight changes behind each ``weights.applied`` event of ``trace``."""
    events: dict[str, list[tuple[str, int]]] = {}
    for span in trace.spans:
        for event in span.events:
            if event.name == WEIGHTS_APPLIED:
                service = _rpc_service(span.name, span.attributes)
                events.setdefault(service, []).append((span.span_id, event.time_us))
    reasons: Reasons = {}
    for service, applied in list(events.items())[:MAX_SERVICES]:
        start_us = min(t for _, t in applied) - LOOKBACK_US
        end_us = max(t for _, t in applied) + 1
        read = functools.partial(_changes, service=service, start_us=start_us, end_us=end_us)
        try:
            changes = sources.analytics(read)
        except EXPECTED:
            return reasons  # the store is down: the events still show, unexplained
        for span_id, time_us in applied:
            before = [c for c in changes if c.time_us <= time_us]
            if before:
                newest = max(c.time_us for c in before)
                reasons[(span_id, time_us)] = [c for c in before if c.time_us == newest]
    return reasons
