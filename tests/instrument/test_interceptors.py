"""The RPC interceptors over real sockets: spans, links, attributes, errors, events, KPIs."""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

import rpc
from instrument import Instrumentation, MemoryExporter
from instrument.model import SpanRecord


def by_kind(spans: list[SpanRecord]) -> dict[str, SpanRecord]:
    return {s.kind: s for s in spans}


@rpc.service("test.Relay")
class Relay:
    """Calls on to Echo, so a call makes a three-span chain; reports what it saw."""

    def __init__(self, client: rpc.AsyncClient) -> None:
        self.client = client

    async def relay(self, value: Any) -> Any:
        return await self.client.proxy("test.Echo").echo(value)

    async def baggage_on(self, extra: dict[str, str]) -> dict[str, Any]:
        """The baggage this handler sees; calls on to Echo with ``extra`` added to it."""
        seen = dict(baggage.get_all())
        context = otel_context.get_current()
        for key, value in extra.items():
            context = baggage.set_baggage(key, value, context)
        token = otel_context.attach(context)
        try:
            await self.client.proxy("test.Echo").echo(1)
        finally:
            otel_context.detach(token)
        return seen

    async def context(self) -> dict[str, Any]:
        span = trace.get_current_span()
        return {
            "trace_id": f"{span.get_span_context().trace_id:032x}",
            "tenant": baggage.get_baggage("tenant"),
        }


async def test_client_and_server_spans_link(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    server = await make_server(interceptors=[tracing.server_interceptor])
    client = make_client([server.address], interceptors=[tracing.client_interceptor])
    assert await client.proxy("test.Echo").echo("hi") == "hi"
    tracing.force_flush()
    spans = by_kind(memory.spans())
    client_span, server_span = spans["CLIENT"], spans["SERVER"]
    assert client_span.trace_id == server_span.trace_id
    assert server_span.parent_span_id == client_span.span_id
    assert client_span.parent_span_id == ""
    for span in (client_span, server_span):
        assert span.name == "test.Echo/echo"
        assert span.status == "OK" and span.service == "svc" and span.host == "testhost"
        assert span.attributes == {
            "rpc.system": "callscope",
            "rpc.service": "test.Echo",
            "rpc.method": "echo",
        }
    assert client_span.peer_service == "test.Echo"
    assert client_span.peer_instance == server.address
    assert server_span.peer_service == "svc"  # the caller's service name, from the call
    assert server_span.peer_instance.startswith("127.0.0.1:")
    assert server_span.duration_us <= client_span.duration_us


async def test_three_hops_share_one_trace(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    echo_server = await make_server(interceptors=[tracing.server_interceptor])
    inner = make_client([echo_server.address], interceptors=[tracing.client_interceptor])
    relay_server = await make_server(Relay(inner), interceptors=[tracing.server_interceptor])
    outer = make_client([relay_server.address], interceptors=[tracing.client_interceptor])
    with tracing.tracer.start_as_current_span("request") as root:
        assert await outer.proxy("test.Relay").relay(7) == 7
    tracing.force_flush()
    spans = {s.name + "/" + s.kind: s for s in memory.spans()}
    assert len(spans) == 5
    assert {s.trace_id for s in spans.values()} == {f"{root.get_span_context().trace_id:032x}"}
    chain = [
        "request/INTERNAL",
        "test.Relay/relay/CLIENT",
        "test.Relay/relay/SERVER",
        "test.Echo/echo/CLIENT",
        "test.Echo/echo/SERVER",
    ]
    for parent, child in itertools.pairwise(chain):
        assert spans[child].parent_span_id == spans[parent].span_id, child


async def test_errors_carry_the_code_on_both_sides(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    server = await make_server(interceptors=[tracing.server_interceptor])
    client = make_client([server.address], interceptors=[tracing.client_interceptor])
    proxy = client.proxy("test.Echo")
    for method, code in (("deny", "PERMISSION_DENIED"), ("nosuch", "NOT_FOUND")):
        try:
            await getattr(proxy, method)()
        except rpc.RpcError as err:
            assert err.code == code
    try:
        await proxy.fail("broken")
    except rpc.RpcError as err:
        assert err.code == "INTERNAL"
    tracing.force_flush()
    spans = memory.spans()
    assert len(spans) == 6 and all(s.status == "ERROR" for s in spans)
    codes = sorted((s.name, s.kind, s.error_code) for s in spans)
    assert ("test.Echo/deny", "CLIENT", "PERMISSION_DENIED") in codes
    assert ("test.Echo/deny", "SERVER", "PERMISSION_DENIED") in codes
    assert ("test.Echo/fail", "SERVER", "INTERNAL") in codes
    assert any("broken" in s.error_message for s in spans if s.name == "test.Echo/fail")


class Governance:
    """Stands in for cluster, limiter and breaker interceptors reporting their decisions."""

    async def __call__(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        inv.add_event("failover", previous="10.0.0.9:7000", attempt=2)
        inv.add_event("breaker", state="half_open")
        return await call_next(inv)


async def test_governance_decisions_become_span_events(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    server = await make_server(interceptors=[tracing.server_interceptor, Governance()])
    client = make_client([server.address], interceptors=[tracing.client_interceptor, Governance()])
    await client.proxy("test.Echo").echo(1)
    tracing.force_flush()
    for span in memory.spans():
        assert [e.name for e in span.events] == ["failover", "breaker"], span.kind
        assert span.events[0].attributes == {"previous": "10.0.0.9:7000", "attempt": 2}
        assert span.events[0].time_us >= span.start_us


async def test_baggage_and_context_reach_the_handler(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    server = await make_server(Relay(None), interceptors=[tracing.server_interceptor])  # type: ignore[arg-type]
    client = make_client([server.address], interceptors=[tracing.client_interceptor])
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        seen = await client.proxy("test.Relay").context()
    finally:
        otel_context.detach(token)
    tracing.force_flush()
    assert seen["tenant"] == "acme"
    assert seen["trace_id"] == memory.spans()[0].trace_id


async def test_baggage_reaches_handlers_w3c_decoded_and_goes_on_as_it_came(
    tracing: Instrumentation, make_server: Any, make_client: Any
) -> None:
    """A gateway put an HTTP ``baggage`` header in the attachments: the handler sees the
    W3C-decoded values ("+" is a plus), and its own calls forward the header byte for byte,
    properties included, unless it changed the baggage (then only its change is new)."""
    header = "id=DF%2028,op=a+b;ttl=3"
    forwarded: list[Any] = []

    async def downstream_spy(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        forwarded.append(inv.attachments.get("baggage"))
        return await call_next(inv)

    async def gateway(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        inv.attachments["baggage"] = header
        return await call_next(inv)

    echo = await make_server(interceptors=[downstream_spy, tracing.server_interceptor])
    inner = make_client([echo.address], interceptors=[tracing.client_interceptor])
    relay = await make_server(Relay(inner), interceptors=[tracing.server_interceptor])
    client = make_client([relay.address], interceptors=[tracing.client_interceptor, gateway])
    for _ in range(2):  # the second time through the C path, where it runs
        assert await client.proxy("test.Relay").baggage_on({}) == {"id": "DF 28", "op": "a+b"}
    await client.proxy("test.Relay").baggage_on({"user": "a b+c"})
    assert forwarded == [header, header, header + ",user=a%20b+c"]


async def test_kpis_per_service_method_role(
    tracing: Instrumentation, memory: MemoryExporter, make_server: Any, make_client: Any
) -> None:
    server = await make_server(interceptors=[tracing.server_interceptor])
    client = make_client([server.address], interceptors=[tracing.client_interceptor])
    proxy = client.proxy("test.Echo")
    for i in range(20):
        await proxy.echo(i)
    for _ in range(5):
        with contextlib.suppress(rpc.PermissionDeniedError):
            await proxy.deny()
    assert tracing.pipeline.emit_kpis_now()
    samples = {(k.method, k.role): k for k in memory.kpis()}
    consumer = samples[("echo", "consumer")]
    provider = samples[("echo", "provider")]
    assert consumer.count == provider.count == 20 and consumer.errors == 0
    assert consumer.instance == server.address and consumer.service == "test.Echo"
    assert samples[("deny", "provider")].errors == 5
    assert consumer.in_flight == 0 and consumer.qps > 0
    assert sum(consumer.latency_ms["buckets"].values()) == 20
    assert 0 < consumer.latency_ms["p50"] <= consumer.latency_ms["p99"]
    process = samples[("", "process")]
    assert process.rss_bytes > 0 and process.counters["spans_exported"] >= 50
    assert set(process.gc_collections) == {"gen0", "gen1", "gen2"}


async def test_injvm_calls_are_traced_too(tracing: Instrumentation, memory: MemoryExporter) -> None:
    server = rpc.Server(interceptors=[tracing.server_interceptor])
    from tests.rpc.conftest import Echo

    server.export(Echo())
    await server.start()
    client = rpc.AsyncClient(interceptors=[tracing.client_interceptor])
    try:
        assert await client.proxy("test.Echo").echo("local") == "local"
    finally:
        await client.close()
        await server.stop(grace=1.0)
    tracing.force_flush()
    spans = by_kind(memory.spans())
    assert spans["CLIENT"].peer_instance == "injvm"
    assert spans["SERVER"].parent_span_id == spans["CLIENT"].span_id


class Exploding:
    def export(self, records: Any) -> Any:
        raise RuntimeError("exporter bug")

    def flush(self, timeout: float) -> None:
        raise RuntimeError("exporter bug")

    def close(self) -> None:
        pass


async def test_a_broken_exporter_never_fails_a_call(
    make_server: Any, make_client: Any, tmp_path: Any
) -> None:
    from instrument import Settings, configure

    inst = configure(
        Settings(service_name="x", exporter="none", spool_dir=str(tmp_path)),
        exporter=Exploding(),  # type: ignore[arg-type]
    )
    try:
        server = await make_server(interceptors=[inst.server_interceptor])
        client = make_client([server.address], interceptors=[inst.client_interceptor])
        for i in range(10):
            assert await client.proxy("test.Echo").echo(i) == i
        inst.force_flush()
        assert inst.pipeline.counters["dropped_undelivered"] == 20
    finally:
        inst.shutdown()


async def test_queued_rpc_spans_stay_out_of_the_garbage_collector(
    memory: MemoryExporter, tmp_path: Any, make_server: Any, make_client: Any
) -> None:
    """Spans wait in the export queue up to a flush interval; as objects the collector
    tracks, they were promoted and walked by every full collection. Queued as tuples
    of strings and integers, the collector untracks them the first time it sees them."""
    import gc

    from instrument import Settings, configure

    settings = Settings(service_name="svc", kpi_interval_s=60, flush_interval_s=3600,
                        spool_dir=str(tmp_path / "spool"))  # fmt: skip
    inst = configure(settings, exporter=memory)
    inst.pipeline.batch_size = inst.pipeline._wake_at = 10**9  # nothing leaves the queue
    try:
        server = await make_server(interceptors=[inst.server_interceptor])
        client = make_client([server.address], interceptors=[inst.client_interceptor])
        for i in range(20):
            assert await client.proxy("test.Echo").echo(i) == i
        queued = list(inst.pipeline._queue)
        assert len(queued) == 40  # a CLIENT and a SERVER span per call
        gc.collect()  # untracks the per-site KPI keys first (once per site in a service's life)
        gc.collect()
        assert [gc.is_tracked(item) for item in queued] == [False] * 40
    finally:
        inst.pipeline.batch_size = inst.pipeline._wake_at = 4096
        inst.shutdown()
    kinds = sorted(s.kind for s in memory.spans())
    assert kinds == ["CLIENT"] * 20 + ["SERVER"] * 20  # and every one still exported
