"""One partition's trace-level facts, summed: the Python side of ``pipeline._paths``.

Spark hands over Arrow batches of spans by trace (within a trace sorted by start and span
id, the trace view's order; a flag marks each trace's first span); each batch's columns
become Python lists once, and each trace is read as index ranges over them -- no Row or
``SpanRecord`` per span.
A trace cut by a batch boundary is held back and finished with the next batch.

Per trace:

* **Paths.** Every span's path: its parent's plus its own service if it is a SERVER
  span (one entered from an uninstrumented caller starts at the ``peer_service`` it
  names; a top span that is not a SERVER starts at its own service). The ancestry read is
  at most ``MAX_DEPTH`` spans and stops at a parent loop. A CLIENT span's call goes to
  the SERVER span it is the parent of (the first, when there are duplicates), else to its
  ``peer_service``. A call whose path has three services or more is counted (calls,
  errors) in the window of its start (so a call from an uninstrumented caller, two
  services long, never is itself; the calls below it are).
* **Critical path.** ``storage.critical_stretches`` (the trace view's rule) from the root (the
  first span without a stored parent); each stretch's time goes to its span's service,
  in the window of the trace's first start.

A span id stored twice in a trace: paths go up through its first span; the critical path
follows the id once, as the trace view does. Output: one small batch of sums per partition
(``FACT_SCHEMA``), added up by the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import compress, pairwise
from typing import TYPE_CHECKING, Any

from storage import children_by_id, critical_stretches

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CLIENT",
    "FACT_SCHEMA",
    "MAX_DEPTH",
    "PATH",
    "SERVER",
    "SHARE",
    "TRACE_COLUMNS",
    "TRACE_ORDER",
    "partition_facts",
    "trace_facts",
]

MAX_DEPTH = 64
"""A span's ancestry is read up to this many spans (itself included); longer ones, and
parent loops, stop there."""
OTHER, SERVER, CLIENT = 0, 1, 2
"""The ``kind`` codes of ``TRACE_COLUMNS``."""
TRACE_COLUMNS = (
    "first", "span_id", "parent_span_id", "kind", "service", "peer_service",
    "start_us", "end_us", "error",
)  # fmt: skip
"""What a partition's batches hold, by trace: ``first`` marks a trace's first span
(strings never null; ``kind`` a code; ``error`` bool)."""
TRACE_ORDER = (
    "start_us", "span_id", "parent_span_id", "kind", "service", "peer_service", "end_us",
    "error",
)  # fmt: skip
"""How a trace's spans are sorted: oldest first (the trace view's order; the rest only
settles ties, so a run's result never depends on the shuffle's order)."""
PATH, SHARE = "p", "s"
FACT_SCHEMA = "fact string, window long, names array<string>, a long, b long"
"""A path's (``PATH``, window, services, calls, errors); a service's (``SHARE``, window,
[service], critical µs, traces); a window's trace count (``SHARE``, window, [""], 0, traces)."""

Totals = dict[tuple[Any, ...], list[int]]


def partition_facts(batches: Iterable[pa.RecordBatch], window_us: int) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``'s function: the facts of every trace in one partition's batches."""
    import pyarrow as pa

    totals: Totals = {}
    held: list[list[Any]] = [[] for _ in TRACE_COLUMNS]
    for batch in batches:
        # through NumPy: ten times faster than ``to_pylist`` (no Arrow scalar per value)
        columns = [
            held[i] + batch.column(i).to_numpy(zero_copy_only=False).tolist()
            for i in range(len(TRACE_COLUMNS))
        ]
        firsts = columns[0]
        cut = len(firsts) - 1
        while cut > 0 and not firsts[cut]:
            cut -= 1  # the last trace may go on in the next batch
        _traces(columns, cut, window_us, totals)
        held = [column[cut:] for column in columns]
    _traces(held, len(held[0]), window_us, totals)
    keys = list(totals)
    yield pa.RecordBatch.from_arrays(
        [
            pa.array([k[0] for k in keys], pa.string()),
            pa.array([k[1] for k in keys], pa.int64()),
            pa.array([list(k[2]) if k[0] == PATH else [k[2]] for k in keys], pa.list_(pa.string())),
            pa.array([totals[k][0] for k in keys], pa.int64()),
            pa.array([totals[k][1] for k in keys], pa.int64()),
        ],
        names=["fact", "window", "names", "a", "b"],
    )


def _traces(columns: list[list[Any]], end: int, window_us: int, totals: Totals) -> None:
    """Add up the traces of ``columns[*][:end]`` (whole traces, each from its first span)."""
    firsts, ids, parents, kinds, services, peers, starts, ends, errors = columns
    bounds = [*compress(range(end), firsts), end]
    for lo, hi in pairwise(bounds):
        trace_facts(
            ids[lo:hi], parents[lo:hi], kinds[lo:hi], services[lo:hi], peers[lo:hi],
            starts[lo:hi], ends[lo:hi], errors[lo:hi], window_us, totals,
        )  # fmt: skip


def trace_facts(
    ids: list[str],
    parents: list[str],
    kinds: list[int],
    services: list[str],
    peers: list[str],
    starts: list[int],
    ends: list[int],
    errors: list[bool],
    window_us: int,
    totals: Totals,
) -> None:
    """Add one trace's facts to ``totals`` (its spans oldest first, by start and span id)."""
    n = len(ids)
    first = dict(zip(reversed(ids), range(n - 1, -1, -1), strict=True))  # an id's first span
    kids = children_by_id(ids, parents)  # the trace view's tree: oldest first
    paths: list[tuple[str, ...]] = [()] * n
    depths = [0] * n  # of a path read whole (no loop, no cut): a child may extend it
    read = range(n if n > 1 else 0)  # a lone span makes no call three services deep
    for i, kind, parent_id, service in zip(read, kinds, parents, services, strict=False):
        if depths[i]:
            path = paths[i]
        else:
            parent = first.get(parent_id, -1) if parent_id else -1
            if parent < 0:
                path = (peers[i], service) if kind == SERVER and peers[i] else (service,)
                paths[i], depths[i] = path, 1
            elif 0 < depths[parent] < MAX_DEPTH:
                path = paths[parent] + (service,) if kind == SERVER else paths[parent]
                paths[i], depths[i] = path, depths[parent] + 1
            else:
                path = _walk(i, first, parents, kinds, services, peers, paths, depths)
        if kind != CLIENT or len(path) < 2:
            continue  # (a call from an uninstrumented caller is two services long)
        name = peers[i]
        for child in kids.get(ids[i], ()):
            if kinds[child] == SERVER:
                name = services[child]  # the callee is traced: its first SERVER span names it
                break
        if not name:
            continue
        key = (PATH, starts[i] - starts[i] % window_us, (*path, name))
        counted = totals.get(key)
        if counted is None:
            totals[key] = [1, int(errors[i])]
        else:
            counted[0] += 1
            counted[1] += errors[i]
    root = next((i for i, p in enumerate(parents) if not p or p not in first), 0)
    window = starts[0] - starts[0] % window_us
    spent: dict[str, int] = {}
    for span, begin, end in critical_stretches(starts, ends, ids, kids, root):
        spent[services[span]] = spent.get(services[span], 0) + end - begin
    for service, micros in spent.items():
        counted = totals.setdefault((SHARE, window, service), [0, 0])
        counted[0] += micros
        counted[1] += 1
    totals.setdefault((SHARE, window, ""), [0, 0])[1] += 1


def _walk(
    span: int,
    first: dict[str, int],
    parents: list[str],
    kinds: list[int],
    services: list[str],
    peers: list[str],
    paths: list[tuple[str, ...]],
    depths: list[int],
) -> tuple[str, ...]:
    """``span``'s path read up its ancestry (at most ``MAX_DEPTH`` spans, no loop), down
    from the nearest ancestor whose whole path is known; kept for reuse when read whole."""
    chain = [span]
    above: tuple[str, ...] = ()
    depth, whole = 0, True
    current = first.get(parents[span], -1) if parents[span] else -1
    while current >= 0:
        if 0 < depths[current] <= MAX_DEPTH - len(chain):
            above, depth = paths[current], depths[current]
            break
        if len(chain) == MAX_DEPTH or current in chain:
            whole = False  # cut, or a parent loop
            break
        chain.append(current)
        current = first.get(parents[current], -1) if parents[current] else -1
    path = above
    for i in reversed(chain):
        if kinds[i] == SERVER:
            path = (*path, services[i]) if path or not peers[i] else (peers[i], services[i])
        elif not path:
            path = (services[i],)
        depth += 1
        if whole:
            paths[i], depths[i] = path, depth
    return path
