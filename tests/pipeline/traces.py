"""A generated trace set whose true call graph is known, for the pipeline's tests.

Services call each other along ``GRAPH``; each trace is one walk from ``gateway``, with
a CLIENT span in the caller and a SERVER span in the callee per call, and a CLIENT span
to ``mysql`` (an uninstrumented peer: no SERVER span) from ``orders``. Latencies and
errors are drawn from a seeded random generator, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from callscope_contract import SpanRecord

GRAPH = {
    "gateway": ["orders", "users"],
    "orders": ["billing", "inventory"],
    "users": [],
    "billing": [],
    "inventory": [],
}
INSTANCES = {name: [f"10.0.0.{i}:{7000 + n}" for n in range(2)] for i, name in enumerate(GRAPH)}
UNINSTRUMENTED = ("orders", "mysql")


def generate(traces: int, start_us: int, spread_us: int, seed: int = 7) -> list[SpanRecord]:
    rng = random.Random(seed)
    spans: list[SpanRecord] = []
    for _ in range(traces):
        trace_id = f"{rng.getrandbits(128):032x}"
        begin = start_us + rng.randrange(spread_us)
        spans.extend(_walk(rng, trace_id, "gateway", rng.choice(INSTANCES["gateway"]), "", begin))
    return spans


def _span_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64) | 1:016x}"


def _walk(
    rng: random.Random, trace_id: str, service: str, instance: str, parent: str, start: int
) -> Iterator[SpanRecord]:
    """The SERVER span of ``service`` (root when ``parent`` is empty) and all below it."""
    server_id = _span_id(rng)
    duration = rng.randint(200, 20_000)
    error = rng.random() < 0.05
    yield SpanRecord(
        trace_id=trace_id, span_id=server_id, parent_span_id=parent,
        name=f"{service}.Api/handle", kind="SERVER", service=service, instance=instance,
        start_us=start, duration_us=duration, status="ERROR" if error else "OK",
        error_code="INTERNAL" if error else "",
    )  # fmt: skip
    callees = list(GRAPH[service])
    if service == UNINSTRUMENTED[0]:
        callees.append(UNINSTRUMENTED[1])
    for callee in callees:
        client_id = _span_id(rng)
        callee_instance = rng.choice(INSTANCES[callee]) if callee in INSTANCES else "10.9.9.9:3306"
        call_start = start + rng.randrange(100)
        call_duration = rng.randint(100, 10_000)
        failed = rng.random() < 0.1
        yield SpanRecord(
            trace_id=trace_id, span_id=client_id, parent_span_id=server_id,
            name=f"{callee}.Api/handle", kind="CLIENT", service=service, instance=instance,
            peer_service=callee, peer_instance=callee_instance, start_us=call_start,
            duration_us=call_duration, status="ERROR" if failed else "OK",
            error_code="TIMEOUT" if failed else "",
        )  # fmt: skip
        if callee in INSTANCES:
            yield from _walk(rng, trace_id, callee, callee_instance, client_id, call_start + 10)
