"""The cluster's decisions as tracing and KPIs report them: events on the CLIENT span of the
attempt they concern, and ``governance.*`` counters in that attempt's consumer KPI sample."""

from __future__ import annotations

from typing import Any

import rpc
from instrument import Instrumentation, MemoryExporter


async def test_a_route_filter_is_an_event_on_the_attempts_client_span(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    kept = await make_server()
    filtered = await make_server()
    port = filtered.address.rpartition(":")[2]
    client = make_client(
        [kept.address, filtered.address], interceptors=[tracing.client_interceptor]
    )
    client.configure("test.Echo", routers=[f"method = echo => port != {port}"])
    for i in range(3):
        assert await client.proxy("test.Echo").echo(i) == i
    tracing.force_flush()
    spans = [s for s in memory.spans() if s.kind == "CLIENT"]
    assert len(spans) == 3
    for span in spans:
        assert span.peer_instance == kept.address
        assert [(e.name, e.attributes) for e in span.events] == [
            ("route.filtered", {"providers": 2, "routed": 1})
        ]
        assert span.events[0].time_us >= span.start_us
    assert tracing.pipeline.emit_kpis_now()
    (sample,) = [k for k in memory.kpis() if k.role == "consumer"]
    assert sample.instance == kept.address
    assert sample.counters == {"governance.route.filtered": 3}


async def test_a_failover_retry_is_counted_in_the_failed_attempts_kpi_sample(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    live = await make_server()
    gone = await make_server()
    dead = gone.address
    await gone.stop(grace=0)  # nothing listens there: the first attempt on it fails UNAVAILABLE
    client = make_client(
        [dead, live.address],
        interceptors=[tracing.client_interceptor],
        governance={"cluster": "failover", "balancer": "round_robin", "retry_budget": 100},
    )
    for i in range(4):
        assert await client.proxy("test.Echo").echo(i) == i
    assert client.cluster.counters[("test.Echo", "retry")] >= 1
    tracing.force_flush()
    failed = [s for s in memory.spans() if s.kind == "CLIENT" and s.status == "ERROR"]
    assert failed and all(s.peer_instance == dead for s in failed)
    assert all(e.name == "retry" for s in failed for e in s.events)
    assert tracing.pipeline.emit_kpis_now()
    samples = {k.instance: k for k in memory.kpis() if k.role == "consumer"}
    assert samples[dead].errors == len(failed)
    assert samples[dead].counters == {"governance.retry": len(failed)}
    assert samples[live.address].counters == {}
    assert samples[live.address].count == 4


def test_the_tally_hands_counts_only_for_the_keys_asked_and_stays_bounded() -> None:
    tally = rpc.cluster.DecisionTally(max_keys=2)
    tally.add("s", "a:1", "m", "retry")
    tally.add("s", "a:1", "m", "retry")
    tally.add("s", "b:1", "m", "route.filtered")
    assert tally.take([("s", "a:1", "m"), ("s", "x:1", "m")]) == {("s", "a:1", "m"): {"retry": 2}}
    tally.add("s", "c:1", "m", "retry")
    tally.add("s", "d:1", "m", "retry")  # the oldest key (b) goes
    keys = [("s", p, "m") for p in ("a:1", "b:1", "c:1", "d:1")]
    assert set(tally.take(keys)) == {("s", "c:1", "m"), ("s", "d:1", "m")}
    assert tally.take(keys) == {}


async def test_a_providers_admission_refusals_are_counted_in_its_kpi_sample(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    import asyncio

    from rpc.flow import ConcurrencyLimit

    server = await make_server(
        interceptors=[tracing.server_interceptor],
        concurrency=ConcurrencyLimit(max_concurrent=1, max_queue=0),
    )
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    slow = asyncio.ensure_future(echo.sleep(0.3))
    while server.inflight < 1:
        await asyncio.sleep(0.01)
    for _ in range(2):
        try:
            await echo.sleep(0.0)
        except rpc.BusyError:
            pass
        else:
            raise AssertionError("the bulkhead admitted a call beyond its room")
    await slow
    await echo.sleep(0.0)  # a served call of the same key, after the refusals
    assert tracing.pipeline.emit_kpis_now()
    (sample,) = [k for k in memory.kpis() if k.role == "provider" and k.method == "sleep"]
    assert sample.instance == server.address
    assert sample.counters == {"governance.flow.rejected": 2}


async def test_a_consumers_cap_refusal_has_a_client_span_and_a_kpi_counter(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    import asyncio

    from rpc.cluster import DECISIONS

    DECISIONS.take([("test.Echo", "rejected", "echo")])  # counts earlier tests left behind
    server = await make_server()
    client = make_client([server.address], interceptors=[tracing.client_interceptor])
    client.configure("test.Echo", max_inflight=1)
    echo = client.proxy("test.Echo", timeout=5)
    slow = asyncio.ensure_future(echo.sleep(0.3))
    while server.inflight < 1:
        await asyncio.sleep(0.01)
    try:
        await echo.echo(1)
    except rpc.ResourceExhaustedError as err:
        assert "max_inflight = 1" in err.message
    else:
        raise AssertionError("the cap let a second call through")
    await slow
    tracing.force_flush()
    (refused,) = [s for s in memory.spans() if s.kind == "CLIENT" and s.peer_instance == "rejected"]
    assert refused.error_code == "RESOURCE_EXHAUSTED"
    assert [(e.name, e.attributes) for e in refused.events] == [
        ("flow.rejected", {"limit": 1, "side": "consumer"})
    ]
    assert tracing.pipeline.emit_kpis_now()
    (sample,) = [k for k in memory.kpis() if k.role == "consumer" and k.instance == "rejected"]
    assert sample.counters == {"governance.flow.rejected": 1}
