"""Degradation as tracing reports it: a breaker's change of state is an event on the CLIENT
span of the attempt that caused it, a degraded call has its own span (peer ``degraded``),
and both are ``governance.*`` counters in the consumer's KPI samples."""

from __future__ import annotations

from typing import Any

import rpc
from instrument import Instrumentation, MemoryExporter
from rpc.degrade import MaskInterceptor, parse_mask
from tests.instrument.conftest import memory, tracing  # noqa: F401 (fixtures)
from tests.rpc.test_breaker import Flaky


async def test_breaker_and_mask_decisions_are_span_events_and_kpi_counters(
    tracing: Instrumentation,  # noqa: F811
    memory: MemoryExporter,  # noqa: F811
    make_server: Any,
    make_client: Any,
) -> None:
    rpc.cluster.DECISIONS.take([("t.Flaky", "degraded", "get")])  # other tests' degraded calls
    flaky = Flaky("one")
    flaky.failing = True
    server = await make_server(flaky)
    client = make_client([server.address], interceptors=[tracing.client_interceptor])
    client.configure("t.Flaky", breaker={"min_calls": 2, "open_for": 60, "fallback": "null"})
    proxy = client.proxy("t.Flaky")
    answers = []
    for _ in range(4):
        try:
            answers.append(await proxy.get())
        except Exception as err:
            answers.append(type(err).__name__)
    assert answers == ["BusyError", "BusyError", None, None]
    mask = parse_mask({"methods": {"get": {"action": "value", "value": "masked"}}})
    client.cluster.masks.set("t.Flaky", mask)  # as the registry's push would
    assert await proxy.get() == "masked"
    tracing.force_flush()
    spans = [s for s in memory.spans() if s.kind == "CLIENT"]
    events = [(s.peer_instance, [e.name for e in s.events]) for s in spans]
    assert events == [
        (server.address, []),
        (server.address, ["breaker.open"]),
        ("degraded", ["breaker.degraded"]),
        ("degraded", ["breaker.degraded"]),
        ("degraded", ["mask.degraded"]),
    ]
    assert tracing.pipeline.emit_kpis_now()
    samples = {k.instance: k for k in memory.kpis() if k.role == "consumer"}
    assert samples[server.address].counters == {"governance.breaker.open": 1}
    assert samples["degraded"].counters == {
        "governance.breaker.degraded": 2,
        "governance.mask.degraded": 1,
    }


async def test_a_providers_mask_is_an_event_on_its_server_span_and_a_kpi_counter(
    tracing: Instrumentation,  # noqa: F811
    memory: MemoryExporter,  # noqa: F811
    make_server: Any,
    make_client: Any,
) -> None:
    masks = MaskInterceptor()
    server = await make_server(interceptors=[tracing.server_interceptor, masks])
    echo = make_client([server.address]).proxy("test.Echo")
    assert await echo.echo(1) == 1
    masks.table.set("test.Echo", parse_mask({"methods": {"echo": "null"}}))
    assert await echo.echo(2) is None
    tracing.force_flush()
    spans = [s for s in memory.spans() if s.kind == "SERVER"]
    assert [[e.name for e in s.events] for s in spans] == [[], ["mask.degraded"]]
    assert tracing.pipeline.emit_kpis_now()
    (sample,) = [k for k in memory.kpis() if k.role == "provider"]
    assert sample.count == 2 and sample.counters == {"governance.mask.degraded": 1}
