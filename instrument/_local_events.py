"""Decisions of guarded local code (``rpc.degrade.guarded``) onto spans and KPIs.

``rpc`` hands them to the sink installed here (it cannot import us). A decision becomes
an event on the current span, and -- when that span is the SERVER span of an RPC call
-- a ``governance.<decision>`` counter on that call's provider KPI sample, as the
decisions of remote calls are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from rpc.cluster import DECISIONS

__all__ = ["EVENTS_PER_SPAN", "on_local_event"]

EVENTS_PER_SPAN = 64
"""Past this many events on one span, a decision is only counted: a guarded function in
a loop inside one call must not grow the span without bound."""


def on_local_event(name: str, attributes: Mapping[str, Any]) -> None:
    span: Any = trace.get_current_span()
    if not span.is_recording():
        return
    events = getattr(span, "events", None)
    if events is None or len(events) < EVENTS_PER_SPAN:
        span.add_event(name, dict(attributes))
    site = getattr(span, "site", None)
    base = getattr(site, "attributes", None)
    if site is not None and site.kind == "SERVER" and base and "rpc.service" in base:
        DECISIONS.add(base["rpc.service"], site.instance, base["rpc.method"], name)
