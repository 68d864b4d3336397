"""The interceptors' C fast path (instrument/_hotpath.c) against the Python reference path.

Both must make the same span records and the same KPI counts; the C path must hand
every case it does not know to Python, never leak, and never share ids across a fork.
The whole instrument suite also runs with the C path turned off (last test).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import rpc
from instrument import Instrumentation, MemoryExporter, Settings, configure
from instrument._kpi import _py_stats_begin, _py_take_all
from instrument._native import hotpath
from instrument._span import encode_ended_python
from tests.instrument.conftest import ROOT, native_turned_off

needs_c = pytest.mark.skipif(native_turned_off(), reason="CALLSCOPE_NATIVE=0: C path off")

TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_the_c_hot_path_is_built() -> None:
    """CI builds it (a C compiler is part of the machine); a missing build must be loud."""
    if native_turned_off():
        assert hotpath is None
    else:
        assert hotpath is not None, "instrument/_hotpath.c was not built at install"


def test_hot_path_says_which_path_runs(tmp_path: Any) -> None:
    inst = _instrumentation(MemoryExporter(), tmp_path, True)
    try:
        assert inst.hot_path == ("python" if native_turned_off() else "c")
        inst.client_interceptor._hot = None
        assert inst.hot_path == "python"
    finally:
        inst.shutdown()
    plain_ratio = configure(
        Settings(service_name="s", exporter="none", sampler="traceidratio", sample_ratio=0.5,
                 spool_dir=str(tmp_path / "r"))
    )  # fmt: skip
    try:
        assert plain_ratio.hot_path == "python"  # not parent-based: the Python path decides
    finally:
        plain_ratio.shutdown()


@needs_c
async def test_the_c_path_samples_new_traces_by_ratio_as_python_does(tmp_path: Any) -> None:
    memory = MemoryExporter()
    inst = configure(
        Settings(service_name="s", sample_ratio=0.25, kpi_interval_s=60,
                 spool_dir=str(tmp_path / "s")),
        exporter=memory,
    )  # fmt: skip
    assert inst.hot_path == "c"
    sampler = inst.provider.sampler
    try:
        roots = [await inst.server_interceptor(_server_call({}), _terminal) for _ in range(400)]
        assert inst.force_flush() and inst.pipeline.emit_kpis_now()
    finally:
        inst.shutdown()
    for span in roots:
        assert span.sampled == sampler.should_sample(int(span.trace_hex, 16), None)
    kept = {s.trace_id for s in memory.spans()}
    assert kept == {s.trace_hex for s in roots if s.sampled}
    assert 40 < len(kept) < 160  # about a quarter
    (provider,) = [k for k in memory.kpis() if k.role == "provider"]
    assert provider.count == 400  # KPIs count every call, sampled or not


def _instrumentation(memory: MemoryExporter, tmp_path: Any, native: bool) -> Instrumentation:
    settings = Settings(service_name="svc", instance="127.0.0.1:1", host="h",
                        kpi_interval_s=60, spool_dir=str(tmp_path / f"spool-{native}"))  # fmt: skip
    inst = configure(settings, exporter=memory)
    if not native:
        inst.client_interceptor._hot = inst.server_interceptor._hot = None
    return inst


async def _terminal(inv: rpc.Invocation) -> Any:
    return trace.get_current_span()


def _server_call(attachments: dict[str, Any], **fields: Any) -> rpc.Invocation:
    return rpc.Invocation("t.S", "m", [1], None, attachments=attachments, peer="127.0.0.1:9",
                          role="server", local="127.0.0.1:7", **fields)  # fmt: skip


def _client_call(**fields: Any) -> rpc.Invocation:
    inv = rpc.Invocation("t.S", "m", [1], None, attachments={})
    inv.peer = "127.0.0.1:7"
    for name, value in fields.items():
        setattr(inv, name, value)
    return inv


def _shape(record: Any) -> tuple[Any, ...]:
    """A record without what differs by chance (ids, times)."""
    d = record.to_dict()
    for field in ("trace_id", "span_id", "parent_span_id", "start_us", "duration_us"):
        d.pop(field, None)
    d["has_parent"] = bool(record.parent_span_id)
    for event in d.get("events") or []:
        event.pop("time_us", None)
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


async def _workload(inst: Instrumentation) -> list[Any]:
    """Calls of every kind the C path takes or hands over; returns what the handler saw."""
    client, server = inst.client_interceptor, inst.server_interceptor
    seen = []
    for _ in range(2):  # the first call of a shape makes its site in Python
        seen.append(await server(_server_call({"traceparent": TP, "callscope-caller": "up"}),
                                 _terminal))  # fmt: skip
        seen.append(await server(_server_call({}), _terminal))  # a root
        seen.append(await server(_server_call({"traceparent": TP[:-2] + "00",
                                               "tracestate": "k=v"}), _terminal))  # fmt: skip
        seen.append(await server(_server_call({"traceparent": "01" + TP[2:]}), _terminal))
        seen.append(await server(_server_call({"traceparent": TP.upper()}), _terminal))
        seen.append(await server(_server_call({"traceparent": TP, "baggage": "a=b"}), _terminal))
        seen.append(await server(_server_call({}, version="2"), _terminal))
        await client(_client_call(), _terminal)
        await client(_client_call(attempt=2), _terminal)
        await client(_client_call(group="g"), _terminal)

        async def nested(inv: rpc.Invocation) -> Any:  # a client call inside a handler
            return await client(_client_call(), _terminal)

        await server(_server_call({"traceparent": TP}), nested)

        async def fails(inv: rpc.Invocation) -> Any:
            raise rpc.PermissionDeniedError("no")

        for call in (client, server):
            inv = _client_call() if call is client else _server_call({"traceparent": TP})
            with pytest.raises(rpc.PermissionDeniedError):
                await call(inv, fails)

        async def with_event(inv: rpc.Invocation) -> Any:
            inv.events = [("retry", {"attempt": 2})]
            return 1

        await client(_client_call(), with_event)

        async def renames(inv: rpc.Invocation) -> Any:
            trace.get_current_span().update_name("t.S/renamed")
            trace.get_current_span().set_attribute("k", "v")
            return 1

        await server(_server_call({"traceparent": TP}), renames)
    assert trace.get_current_span() is trace.INVALID_SPAN  # every context restored
    return seen


@needs_c
async def test_c_and_python_paths_make_the_same_records_and_counts(tmp_path: Any) -> None:
    results = {}
    for native in (True, False):
        memory = MemoryExporter()
        inst = _instrumentation(memory, tmp_path, native)
        try:
            seen = await _workload(inst)
            assert inst.force_flush() and inst.pipeline.emit_kpis_now()
        finally:
            inst.shutdown()
        kpis = sorted(
            (
                k.method,
                k.role,
                k.count,
                k.errors,
                k.in_flight,
                sum(k.latency_ms["buckets"].values()),
            )
            for k in memory.kpis()
            if k.role != "process"
        )
        remote = [
            (s.trace_hex, s.parent_hex, s.sampled)
            for s in seen
            if s.parent_hex == "b7ad6b7169203331"
        ]
        results[native] = (sorted(_shape(r) for r in memory.spans()), kpis, remote)
    assert results[True] == results[False]
    spans, kpis, remote = results[True]
    assert len(spans) == 2 * 15 and ("m", "provider", 20, 2, 0, 20) in kpis


@needs_c
async def test_the_c_path_takes_the_common_calls(tmp_path: Any) -> None:
    """Not a silent fallback: the common shapes are begun in C (after their first call)."""
    inst = _instrumentation(MemoryExporter(), tmp_path, True)
    try:
        await inst.server_interceptor(_server_call({"traceparent": TP}), _terminal)
        await inst.client_interceptor(_client_call(), _terminal)
        assert inst.server_interceptor._hot.begin(_server_call({"traceparent": TP})) is not None
        assert inst.client_interceptor._hot.begin(_client_call()) is not None
        assert inst.server_interceptor._hot.begin(_server_call({"baggage": "a=b"})) is None
        assert inst.client_interceptor._hot.begin(_client_call(attempt=2)) is None
    finally:
        inst.shutdown()


traceparents = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF-x", min_size=50, max_size=58),
    st.builds(
        lambda v, t, s, f: f"{v}-{t}-{s}-{f}",
        st.sampled_from(["00", "01", "ff", "0g"]),
        st.sampled_from(["0" * 32, "0af7651916cd43dd8448eb211c80319c", "A" * 32, "1" * 31]),
        st.sampled_from(["0" * 16, "b7ad6b7169203331", "B" * 16]),
        st.sampled_from(["00", "01", "03", "0f", "fe", "zz", "1"]),
    ),
)


@needs_c
@settings(max_examples=300, deadline=None)
@given(parent=traceparents, state=st.one_of(st.none(), st.text(max_size=8), st.just("x" * 600)))
def test_the_c_path_reads_traceparents_as_python_does(parent: str, state: str | None) -> None:
    attachments: dict[str, Any] = {"traceparent": parent}
    if state is not None:
        attachments["tracestate"] = state
    spans = []
    for inst in (_NATIVE, _PYTHON):
        span = asyncio.run(inst.server_interceptor(_server_call(dict(attachments)), _terminal))
        spans.append(span)
    c, py = spans
    assert (c.parent_hex, c.sampled, c.trace_state) == (py.parent_hex, py.sampled, py.trace_state)
    if py.parent_hex:
        assert c.trace_hex == py.trace_hex


_NATIVE: Any = None
_PYTHON: Any = None


@pytest.fixture(scope="module", autouse=True)
def _both_paths(tmp_path_factory: Any) -> Any:
    global _NATIVE, _PYTHON
    tmp = tmp_path_factory.mktemp("paths")
    _NATIVE = _instrumentation(MemoryExporter(), tmp, True)
    _PYTHON = _instrumentation(MemoryExporter(), tmp, False)
    yield
    _NATIVE.shutdown()
    _PYTHON.shutdown()


ids = st.text(alphabet="0123456789abcdef", min_size=16, max_size=32)


@needs_c
@settings(max_examples=300, deadline=None)
@given(
    fields=st.text(max_size=40),
    trace_hex=ids,
    span_hex=ids,
    parent_hex=st.one_of(st.just(""), ids),
    start=st.integers(0, 2**62),
    duration=st.integers(0, 2**40),
)
def test_the_c_record_is_the_python_record(
    fields: str, trace_hex: str, span_hex: str, parent_hex: str, start: int, duration: int
) -> None:
    item = (fields, trace_hex, span_hex, parent_hex, start, duration, None)
    assert hotpath.encode_ended(item) == encode_ended_python(item)  # type: ignore[union-attr]


@needs_c
def test_the_c_record_refuses_what_is_not_an_ended_tuple() -> None:
    bad_items = [
        (),
        ("f", "t", "s", "p", 1, 2),
        (1, "t", "s", "p", 1, 2, None),
        ("f", "t", "s", "p", "1", 2, None),
        ("f", "t", "s", "p", 2**64, 2, None),
    ]
    for bad in bad_items:
        with pytest.raises((TypeError, OverflowError)):
            hotpath.encode_ended(bad)  # type: ignore[union-attr]


@needs_c
@settings(max_examples=200, deadline=None)
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 10**10), st.booleans()), max_size=40
    ),
    open_calls=st.integers(0, 3),
)
def test_c_kpi_counters_count_as_python_does(
    calls: list[tuple[str, int, bool]], open_calls: int
) -> None:
    bounds = (500_000, 1_000_000, 5_000_000, 10**9)
    tables: list[dict[Any, Any]] = [{}, {}]
    for table, begin in zip(tables, (hotpath.stats_begin, _py_stats_begin), strict=True):  # type: ignore[union-attr]
        for key, ns, error in calls:
            begin(table, key, bounds).end(ns, error)
        for _ in range(open_calls):
            begin(table, "open", bounds)
    c = sorted(hotpath.take_all(tables[0]))  # type: ignore[union-attr]
    py = sorted(_py_take_all(tables[1]))
    assert [tuple(r) for r in c] == [tuple(r) for r in py]
    assert sorted(tables[0]) == sorted(tables[1])  # both forgot nothing still open
    assert sorted(hotpath.take_all(tables[0])) == sorted(_py_take_all(tables[1]))  # type: ignore[union-attr]


@needs_c
def test_c_kpi_counters_refuse_bad_bounds() -> None:
    with pytest.raises(ValueError, match="at most"):
        hotpath.CallStats(tuple(range(100)))  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        hotpath.CallStats(("1",))  # type: ignore[union-attr]


@needs_c
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_forked_children_draw_other_ids() -> None:
    """Without the reseed a child would repeat its parent's next ids exactly."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids, exit at once
        os.write(write, " ".join(hotpath.new_ids()).encode())  # type: ignore[union-attr]
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 200).decode()
    os.close(read)
    assert child != " ".join(hotpath.new_ids())  # type: ignore[union-attr]


@needs_c
async def test_the_c_path_does_not_leak(tmp_path: Any) -> None:
    inst = configure(Settings(service_name="svc", exporter="none", kpi_interval_s=60,
                              spool_dir=str(tmp_path / "spool")))  # fmt: skip
    assert inst.server_interceptor._hot is not None
    client, server = inst.client_interceptor, inst.server_interceptor

    async def nested(inv: rpc.Invocation) -> Any:
        return await client(_client_call(), _terminal)

    async def rounds(n: int) -> None:
        for _ in range(n):
            await server(_server_call({"traceparent": TP, "callscope-caller": "up"}), nested)
        assert inst.force_flush()
        inst.pipeline.emit_kpis_now()

    try:
        await rounds(2000)  # warm: sites, caches, KPI keys
        tracemalloc.start()
        await rounds(3000)
        before = tracemalloc.get_traced_memory()[0]
        await rounds(20000)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        inst.shutdown()
    assert grown < 200_000, f"{grown} bytes more after 20,000 more calls"


def test_the_instrument_suite_passes_without_the_c_path() -> None:
    """The pure-Python path (no compiler, or CALLSCOPE_NATIVE=0) is tested whole."""
    if native_turned_off():
        return  # this run is that run
    env = {**os.environ, "CALLSCOPE_NATIVE": "0"}
    tests = ["test_interceptors.py", "test_kpi.py", "test_tracer.py", "test_pipeline.py",
             "test_exports.py", "test_native.py"]  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         *[f"tests/instrument/{t}" for t in tests]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@needs_c
def test_the_c_batch_makes_the_python_records_and_closes_kpis() -> None:
    """The export thread's share: records of Ended tuples in C, KPI counters closed once,
    everything else (span objects, a tuple that does not encode) left to Python."""
    from instrument._exporters import Record

    bounds = (1_000, 10**9)
    stats: dict[Any, Any] = {}
    hotpath.stats_begin(stats, "k", bounds)  # type: ignore[union-attr]
    hotpath.stats_begin(stats, "k", bounds)  # type: ignore[union-attr]
    plain = ("{}", "a" * 32, "b" * 16, "", 5_000, 2_000, "k")
    kpi_only = (None, "c" * 32, "d" * 16, "", 5_000, 500, "k")
    odd = ("{}", "e" * 32, "f" * 16, "", "not an int", 1, None)
    span = object()
    records, rest = hotpath.records_of([plain, kpi_only, span, odd], "t", Record, stats)  # type: ignore[union-attr]
    assert records == [Record("t", b"a" * 32, encode_ended_python(plain))]
    assert type(records[0]) is Record
    assert rest == [span, odd]
    count, errors, in_flight, max_ns, buckets = stats["k"].take()
    assert (count, errors, in_flight, max_ns, buckets) == (2, 0, 0, 2_000, [1, 1, 0])


@pytest.mark.parametrize("native", [True, False], ids=["c", "python"])
def test_kpis_stay_exact_with_loops_on_many_threads(tmp_path: Any, native: bool) -> None:
    """Sync clients and servers each run a loop thread sharing the same interceptors: the C
    counters rely on the GIL, the Python ones on a lock; neither may lose a count."""
    import threading

    memory = MemoryExporter()
    inst = _instrumentation(memory, tmp_path, native)
    calls, threads = 3000, 4

    def loop_thread() -> None:
        async def run() -> None:
            for i in range(calls):
                inv = _server_call({"traceparent": TP, "callscope-caller": "up"})
                if i % 7 == 0:  # some calls take the Python path
                    inv.version = "2"
                await inst.server_interceptor(inv, _terminal)
                await inst.client_interceptor(_client_call(), _terminal)

        asyncio.run(run())

    try:
        workers = [threading.Thread(target=loop_thread) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert inst.force_flush() and inst.pipeline.emit_kpis_now()
    finally:
        inst.shutdown()
    counts = {(k.role, k.count, k.in_flight) for k in memory.kpis() if k.role != "process"}
    assert counts == {("provider", calls * threads, 0), ("consumer", calls * threads, 0)}
    assert len(memory.spans()) == 2 * calls * threads


def _int_posing_as(text: str) -> int:
    """An int that, read as if it were a compact ASCII ``str`` (CPython 3.11's layouts of
    both), has ``text``'s length and bytes: what reading an unchecked wire value as a
    string would see. The JSON codec delivers such an int from 500 decimal digits.

    3.11's int is ``ob_size`` (the length's place) then 30-bit digits from byte 24; a str's
    ``state`` bits sit at byte 32 and an ASCII str's bytes start at byte 48."""
    digits = [0] * len(text)
    digits[2] = 0xE4  # state: kind 1, compact, ascii, ready
    data = text.encode("ascii") + bytes(4 - len(text) % 4)
    for i in range(0, len(data), 4):  # every byte < 0x40: digits stay below 2**30
        digits[6 + i // 4] = int.from_bytes(data[i : i + 4], "little")
    digits[-1] = digits[-1] or 1  # the top digit of an int of this size is not zero
    return sum(d << (30 * k) for k, d in enumerate(digits))


# A traceparent of decimal digits only (every byte below 0x40), valid and ours to read.
FORGED_TP = "00-12345678901234567890123456789012-1234567890123456-01"
FORGED = _int_posing_as(FORGED_TP)


@needs_c
def test_a_number_sent_as_traceparent_is_never_read_as_a_string() -> None:
    """The C path once read a traceparent's bytes without checking it was a str: a number
    from the wire (here through the JSON codec) was undefined behaviour, and this one was
    taken for the parent ``1234…``. Both paths must start a new trace."""
    from rpc import get_codec

    json = get_codec("json")
    sent = json.decode(json.encode([[1], None, {"traceparent": FORGED}]))[2]
    assert sent["traceparent"] == FORGED
    spans = []
    for inst in (_NATIVE, _PYTHON):
        for _ in range(2):  # the first call of a shape makes its site in Python
            span = asyncio.run(inst.server_interceptor(_server_call(dict(sent)), _terminal))
        spans.append(span)
    assert [(s.parent_hex, s.trace_hex != FORGED_TP[3:35]) for s in spans] == [("", True)] * 2


wire_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.integers(2**1600, 2**1700),
        st.just(FORGED),
        st.floats(allow_nan=True),
        st.text(max_size=70),
        st.binary(max_size=20),
        st.sampled_from([TP, TP[:-1] + "x", TP.replace("-", "_"), "00-" + "0" * 52, "x" * 600]),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
wire_keys = st.one_of(
    st.sampled_from(["traceparent", "tracestate", "baggage", "callscope-caller"]),
    st.text(max_size=8),
    st.integers(),
)


@needs_c
@settings(max_examples=400, deadline=None)
@given(
    attachments=st.dictionaries(wire_keys, wire_values, max_size=5),
    local=st.sampled_from(["", "127.0.0.1:7", "h:1"]),
)
def test_hostile_attachments_get_the_same_answer_on_both_paths(
    attachments: dict[Any, Any], local: str
) -> None:
    """What a caller sends arrives as any msgpack map: the C path must not crash, must leave
    the context as it found it, and must agree with the Python path (or hand over to it)."""
    seen = []
    for inst in (_NATIVE, _PYTHON):
        inv = _server_call(dict(attachments))
        inv.local = local

        async def call(inv: rpc.Invocation = inv, inst: Any = inst) -> Any:
            span = await inst.server_interceptor(inv, _terminal)
            assert trace.get_current_span() is trace.INVALID_SPAN
            return span

        seen.append(asyncio.run(call()))
    c, py = seen
    assert (c.parent_hex, c.sampled, c.trace_state, c.site.peer_service, c.site.instance) == (
        py.parent_hex, py.sampled, py.trace_state, py.site.peer_service, py.site.instance,
    )  # fmt: skip
    if py.parent_hex:
        assert c.trace_hex == py.trace_hex


@needs_c
async def test_a_failing_c_path_never_fails_the_call(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    memory = MemoryExporter()
    inst = _instrumentation(memory, tmp_path, True)
    real = inst.server_interceptor._hot

    class BeginFails:
        def begin(self, inv: rpc.Invocation) -> Any:
            raise RuntimeError("begin broke")

    class EndFails:
        def begin(self, inv: rpc.Invocation) -> Any:
            return real.begin(inv)

        def end(self, span: Any, inv: rpc.Invocation) -> None:
            real.reset(span)
            raise RuntimeError("end broke")

    async def answer(inv: rpc.Invocation) -> Any:
        return 42

    try:
        await inst.server_interceptor(_server_call({"traceparent": TP}), answer)  # the site
        inst.server_interceptor._hot = BeginFails()
        assert await inst.server_interceptor(_server_call({"traceparent": TP}), answer) == 42
        inst.server_interceptor._hot = EndFails()
        assert await inst.server_interceptor(_server_call({"traceparent": TP}), answer) == 42
        assert trace.get_current_span() is trace.INVALID_SPAN
        assert inst.force_flush()
    finally:
        inst.shutdown()
    assert len(memory.spans()) == 2  # the first call, and the one Python took over
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("begin a span in C" in m for m in messages)
    assert any("end a span in C" in m for m in messages)
