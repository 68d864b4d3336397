"""Guarded local code's decisions as tracing reports them: events on the span of the RPC
call the code ran in, and ``governance.*`` counters on that call's provider KPI sample."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import rpc
from instrument import Instrumentation, MemoryExporter
from instrument._local_events import EVENTS_PER_SPAN, on_local_event
from tests.instrument.conftest import memory, tracing  # noqa: F401 (fixtures)


@pytest.fixture
def sink() -> Iterator[None]:
    """The sink ``Instrumentation.install`` registers (the fixture's is not installed)."""
    remove = rpc.degrade.add_local_event_sink(on_local_event)
    yield
    remove()


def quote(fail: bool) -> str:
    if fail:
        raise ConnectionError("the pricing table is away")
    return "fresh"


@rpc.service("t.Shop")
class Shop:
    def __init__(self, name: str) -> None:
        # min_calls 3, ratio 0.5: the first call's success and two failures open it
        self.quote = rpc.degrade.guarded(name=name, fallback="null", min_calls=3, open_for=60)(
            quote
        )

    def buy(self, fail: bool, times: int = 1) -> list[Any]:
        answers: list[Any] = []
        for _ in range(times):
            try:
                answers.append(self.quote(fail))
            except ConnectionError:
                answers.append("failed")
        return answers


async def test_guarded_decisions_are_events_on_the_server_span_and_kpi_counters(
    tracing: Instrumentation,  # noqa: F811
    memory: MemoryExporter,  # noqa: F811
    sink: None,
    make_server: Any,
    make_client: Any,
) -> None:
    name = f"t.quote.{tracing.hot_path}"  # one breaker per run of the test
    server = await make_server(Shop(name), interceptors=[tracing.server_interceptor])
    shop = make_client([server.address]).proxy("t.Shop")
    assert await shop.buy(False) == ["fresh"]
    assert await shop.buy(True, 3) == ["failed", "failed", None]  # opens, then degrades
    assert await shop.buy(True, EVENTS_PER_SPAN + 10) == [None] * (EVENTS_PER_SPAN + 10)
    tracing.force_flush()
    spans = [s for s in memory.spans() if s.kind == "SERVER"]
    assert [[e.name for e in s.events] for s in spans[:2]] == [
        [],
        ["breaker.open", "guarded.degraded"],
    ]
    assert spans[1].events[1].attributes == {"guarded": name, "reason": "open"}
    assert len(spans[2].events) == EVENTS_PER_SPAN  # bounded; the counter has them all
    assert tracing.pipeline.emit_kpis_now()
    (sample,) = [k for k in memory.kpis() if k.role == "provider"]
    assert sample.count == 3
    assert sample.counters == {
        "governance.breaker.open": 1,
        "governance.guarded.degraded": 1 + EVENTS_PER_SPAN + 10,
    }


def test_outside_any_span_a_decision_changes_nothing_and_a_failing_sink_is_skipped(
    sink: None, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(name: str, attributes: Any) -> None:
        raise RuntimeError("a broken sink")

    remove = rpc.degrade.add_local_event_sink(broken)
    try:
        rpc.degrade.local_event("guarded.degraded", guarded="t.none")
    finally:
        remove()
    assert "a local event sink failed on guarded.degraded" in caplog.text
