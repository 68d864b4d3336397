"""Generated traces for the dashboard's tests and benchmarks: a gateway calling services
that call others, with tags, errors and governance events, reproducible from a seed."""

from __future__ import annotations

import os
import random

from callscope_contract import SpanEvent, SpanRecord

SERVICES = ("gateway", "orders", "stock", "payments", "users", "search")
METHODS = ("get", "list", "create", "update", "reserve", "charge")
ZONES = ("a", "b", "c")
MAX_DEPTH = 6


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def make_trace(
    rng: random.Random,
    start_us: int,
    spans: int = 8,
    *,
    error: bool = False,
    attributes: dict[str, str] | None = None,
    trace_id: str | None = None,
) -> list[SpanRecord]:
    """One trace of ``spans`` spans under a gateway root; with ``error`` its last span
    fails and so does the root it failed; ``attributes`` go on the root (so a search by
    tag finds the trace)."""
    trace_id = trace_id or os.urandom(16).hex()
    root_ms = rng.uniform(5, 200)
    root = SpanRecord(
        trace_id=trace_id, span_id=_hex(rng, 16), name="gateway/checkout", kind="SERVER",
        service="gateway", instance="10.0.0.5:7000", host="node-1",
        start_us=start_us, duration_us=int(root_ms * 1000),
        attributes={"zone": rng.choice(ZONES), "http.route": "/checkout", **(attributes or {})},
    )  # fmt: skip
    made, depth = [root], {root.span_id: 0}
    while len(made) < spans:
        parent = rng.choice([s for s in made[-50:] if depth[s.span_id] < MAX_DEPTH] or made[:1])
        offset = rng.randint(0, max(parent.duration_us // 2, 1))
        length = max(1, int((parent.duration_us - offset) * rng.uniform(0.1, 0.9)))
        service = rng.choice(SERVICES[1:])
        method = rng.choice(METHODS)
        events = []
        if rng.random() < 0.05:
            events.append(SpanEvent(parent.start_us + offset + length // 2, "retry",
                                    {"attempt": 2, "reason": "TIMEOUT"}))  # fmt: skip
        span = SpanRecord(
            trace_id=trace_id, span_id=_hex(rng, 16), parent_span_id=parent.span_id,
            name=f"{service}/{method}", kind="SERVER" if len(made) % 2 else "CLIENT",
            service=service, instance=f"10.0.1.{rng.randint(1, 9)}:7001", host="node-2",
            peer_service=parent.service, start_us=parent.start_us + offset,
            duration_us=length, attributes={"rpc.method": method, "zone": rng.choice(ZONES)},
            events=events,
        )  # fmt: skip
        depth[span.span_id] = depth[parent.span_id] + 1
        made.append(span)
    if error:
        for failed in {id(s): s for s in (made[-1], root)}.values():
            failed.status, failed.error_code = "ERROR", "UNAVAILABLE"
            failed.error_message = "no provider answered"
    return made
