"""A generated trace set whose true call graph is known, for the pipeline's tests.

Services call each other along ``GRAPH``; each trace is one walk from ``gateway``, with
a CLIENT span in the caller and a SERVER span in the callee per call, and a CLIENT span
to ``mysql`` (an uninstrumented peer: no SERVER span) from ``orders``. Every fourth trace
is instead a call from ``cron`` (an uninstrumented caller: a SERVER span in ``billing``
that names its peer, with no CLIENT span). So every edge of ``TRUE_EDGES`` carries one
call per trace that walks it. Latencies and
errors are drawn from a seeded random generator, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]

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
FROM_OUTSIDE = ("cron", "billing")
W_US = 60_000_000
"""The window of the independent computation (60 s)."""
LEVEL_KEYS = {
    "service": lambda c: (c[0], c[2]),
    "instance": lambda c: (c[0], c[2], c[1], c[3]),
    "method": lambda c: (c[0], c[2], c[4]),
}
TRUE_EDGES = {(a, b) for a, callees in GRAPH.items() for b in callees} | {
    UNINSTRUMENTED,
    FROM_OUTSIDE,
}


def generate(traces: int, start_us: int, spread_us: int, seed: int = 7) -> list[SpanRecord]:
    return [span for trace in generate_traces(traces, start_us, spread_us, seed) for span in trace]


def generate_traces(
    traces: int, start_us: int, spread_us: int, seed: int = 7
) -> Iterator[list[SpanRecord]]:
    """The same spans as :func:`generate`, one trace at a time (a run of 10M spans would
    not fit in memory as records)."""
    rng = random.Random(seed)
    for n in range(traces):
        trace_id = f"{rng.getrandbits(128):032x}"
        begin = start_us + rng.randrange(spread_us)
        if n % 4 == 3:
            yield [_from_outside(rng, trace_id, begin)]
        else:
            root = rng.choice(INSTANCES["gateway"])
            yield list(_walk(rng, trace_id, "gateway", root, "", begin))


def generate_chunks(
    traces: int, start_us: int, spread_us: int, seed: int = 7, chunk_spans: int = 100_000
) -> Iterator[list[SpanRecord]]:
    """:func:`generate_traces` in lists of whole traces, about ``chunk_spans`` spans each:
    each chunk is complete for :func:`plain_calls` (no trace straddles two)."""
    chunk: list[SpanRecord] = []
    for trace in generate_traces(traces, start_us, spread_us, seed):
        chunk.extend(trace)
        if len(chunk) >= chunk_spans:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def json_lines(spans: Iterable[SpanRecord]) -> bytes:
    """``SpanRecord.to_json`` of each span, one a line: the same bytes, three times faster
    for a span with no attributes, events or links (the generator's), written out field by
    field (``asdict``'s deep copy is what costs)."""
    return b"".join(_json_line(s) if _plain(s) else s.to_json() + b"\n" for s in spans)


def _plain(s: SpanRecord) -> bool:
    return not (s.attributes or s.events or s.links)


def _json_line(s: SpanRecord) -> bytes:
    q = encode_basestring_ascii
    return (
        f'{{"trace_id":{q(s.trace_id)},"span_id":{q(s.span_id)},"name":{q(s.name)},'
        f'"kind":{q(s.kind)},"service":{q(s.service)},"start_us":{s.start_us},'
        f'"duration_us":{s.duration_us},"parent_span_id":{q(s.parent_span_id)},'
        f'"instance":{q(s.instance)},"host":{q(s.host)},"peer_service":{q(s.peer_service)},'
        f'"peer_instance":{q(s.peer_instance)},"status":{q(s.status)},'
        f'"error_code":{q(s.error_code)},"error_message":{q(s.error_message)},'
        f'"attributes":{{}},"events":[],"schema":{s.schema}}}\n'
    ).encode()


def _from_outside(rng: random.Random, trace_id: str, start: int) -> SpanRecord:
    caller, service = FROM_OUTSIDE
    return SpanRecord(
        trace_id=trace_id, span_id=_span_id(rng), name=f"{service}.Api/charge", kind="SERVER",
        service=service, instance=rng.choice(INSTANCES[service]), peer_service=caller,
        peer_instance="10.8.8.8:40000", start_us=start, duration_us=rng.randint(200, 5000),
    )  # fmt: skip


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


# -- the independent computation: plain Python over the same records -----------------------
def plain_calls(spans: Iterable[SpanRecord]) -> list[tuple]:
    """(caller, caller_instance, callee, callee_instance, method, window, duration_us, error)"""
    spans = list(spans)
    children = {(s.trace_id, s.parent_span_id): s for s in spans if s.kind == "SERVER"}
    clients = {(s.trace_id, s.span_id) for s in spans if s.kind == "CLIENT"}
    out = []
    for s in spans:
        window = s.start_us - s.start_us % W_US
        error = s.status == "ERROR"
        if s.kind == "CLIENT":
            child = children.get((s.trace_id, s.span_id))
            callee = (child.service, child.instance) if child else (s.peer_service, s.peer_instance)
            out.append((s.service, s.instance, *callee, s.name, window, s.duration_us, error))
        elif (
            s.kind == "SERVER" and s.peer_service and (s.trace_id, s.parent_span_id) not in clients
        ):
            out.append((s.peer_service, s.peer_instance, s.service, s.instance, s.name, window,
                        s.duration_us, error))  # fmt: skip
    return out


def group(calls: list[tuple], level: str) -> dict[tuple, list[tuple]]:
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for c in calls:
        groups[(c[5], *LEVEL_KEYS[level](c))].append(c)
    return groups


def _by_trace(spans: Iterable[SpanRecord]) -> list[tuple[list[SpanRecord], dict]]:
    """Each trace's spans, with each span's children (by ``parent_span_id``)."""
    traces: dict[str, list[SpanRecord]] = defaultdict(list)
    for s in spans:
        traces[s.trace_id].append(s)
    out = []
    for trace in traces.values():
        kids: dict[str, list[SpanRecord]] = defaultdict(list)
        for s in trace:
            kids[s.parent_span_id].append(s)
        out.append((trace, kids))
    return out


def plain_paths(spans: Iterable[SpanRecord]) -> dict[tuple, list[int]]:
    """{(window, services): [calls, errors]} of the calls three services deep or more,
    walking each trace down from its roots (the job walks up from each call)."""
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for trace, kids in _by_trace(spans):
        ids = {s.span_id for s in trace}
        for root in (s for s in trace if s.parent_span_id not in ids):
            outside = root.kind == "SERVER" and root.peer_service
            _down(root, (root.peer_service,) if outside else (), kids, out)
    return dict(out)


def _down(span: SpanRecord, path: tuple, kids: dict, out: dict) -> None:
    if span.kind == "SERVER" or not path:
        path = (*path, span.service)
    if span.kind == "CLIENT":
        servers = [k for k in kids[span.span_id] if k.kind == "SERVER"]
        full = (*path, servers[0].service if servers else span.peer_service)
        if len(full) >= 3:
            counted = out[(span.start_us - span.start_us % W_US, full)]
            counted[0] += 1
            counted[1] += span.status == "ERROR"
    for kid in kids[span.span_id]:
        _down(kid, path, kids, out)


def plain_critical(spans: Iterable[SpanRecord]) -> dict[tuple, list[int]]:
    """{(window, service): [critical µs, traces on whose critical path it is]}, and
    {(window, ""): [0, traces]}: Jaeger's rule, recursively (the job runs the iterative
    ``storage.critical_path``)."""
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for trace, kids in _by_trace(spans):
        ids = {s.span_id for s in trace}
        root = min((s for s in trace if s.parent_span_id not in ids),
                   key=lambda s: (s.start_us, s.span_id))  # fmt: skip
        spent: dict[str, int] = defaultdict(int)
        _on_critical_path(root, root.start_us + root.duration_us, kids, spent)
        window = root.start_us - root.start_us % W_US
        out[(window, "")][1] += 1
        for service, micros in spent.items():
            if micros > 0:
                out[(window, service)][0] += micros
                out[(window, service)][1] += 1
    return dict(out)


def _on_critical_path(span: SpanRecord, end: int, kids: dict, spent: dict[str, int]) -> None:
    """From ``end`` back: the last child to finish, then each child finished by the time
    the one after it started; the gaps are ``span``'s own."""
    cursor, first = end, True
    for child in sorted(kids[span.span_id], key=lambda k: -(k.start_us + k.duration_us)):
        child_end = child.start_us + child.duration_us
        if child.start_us >= cursor or child_end <= span.start_us:
            continue
        if not first and child_end > cursor:
            continue
        clipped = min(child_end, cursor)
        spent[span.service] += cursor - clipped
        _on_critical_path(child, clipped, kids, spent)
        cursor, first = max(child.start_us, span.start_us), False
    spent[span.service] += max(0, cursor - span.start_us)
