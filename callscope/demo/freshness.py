"""The streaming job's freshness, measured: a span produced → its window's edges readable.

:func:`measure_freshness` starts ``callscope pipeline stream`` (the CLI, its defaults:
the watermark is the job's own unless given) on a Kafka topic of the run's own, then
produces calls steadily (a CLIENT span and the SERVER span it called, ``start_us`` = the
moment it is produced, sent at once) while it polls the job's store for each window's
dependency edges. The span that waits longest for its window is the window's first: the
job can only emit a window once the watermark has passed its end. So each measured window
is reported by that worst case (its first span's start until its edges were readable,
polled every 0.5 s), and the median over all spans too.

Only whole windows count (production began before their start), ``windows`` of them;
production goes on until the last one's edges are readable, since a window closes only
when later spans move the watermark past it. Then (``quiet``) production stops, and the
window in progress is timed too: only the job's own clock ticks
(``pipeline/_stream_ticks.py``) can close it now.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callscope_contract import SpanRecord, environment

from .loop import START_S, LoopFailed, children_alive, create_topics, delete_topics, wait_until
from .processes import Children

__all__ = ["FreshnessResult", "measure_freshness"]

_WATERMARK = re.compile(
    r"streaming kafka://\S+: (\d+) s windows, (\d+) s watermark, a micro-batch every (\S+) s"
)
_POLL_S = 0.5


@dataclass
class FreshnessResult:
    window_s: int
    watermark_s: int | None = None  # as the job reported it
    trigger_s: float | None = None  # ditto
    rate: float = 0.0  # calls a second (two spans each)
    worst_s: list[float] = field(default_factory=list)  # per window: first span → readable
    freshness_s: float | None = None  # median over the windows of ``worst_s``
    freshness_max_s: float | None = None
    span_median_s: float | None = None  # median over every span of the measured windows
    job_cpu_cores: float | None = None  # the job's CPU seconds a second over the windows
    quiet_s: float | None = None  # the window in progress when the spans stopped: first
    # span → readable (moved on by the job's clock ticks alone)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_freshness(
    kafka_bootstrap: str,
    workdir: Path,
    *,
    window_s: int = 60,
    windows: int = 3,
    rate: float = 100.0,
    watermark_s: int | None = None,
    trigger_s: float | None = None,
    quiet: bool = True,
    report: Callable[[str], None] = lambda line: None,
) -> FreshnessResult:
    """Run the measurement once (module docstring); the job is stopped on return."""
    if windows < 1 or not 0 < rate <= 2000:
        raise ValueError("windows >= 1 and 0 < rate <= 2000 calls a second")
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    topic = f"callscope-fresh-{secrets.token_hex(4)}.spans"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCOPE_")}
    env.update({"PYTHONUNBUFFERED": "1", environment.CALLSCOPE_SERVICE_NAME: "pipeline"})
    create_topics(kafka_bootstrap, [topic])
    children = Children(workdir / "logs")
    store = f"sqlite://{workdir / 'analytics.db'}"
    argv = ["pipeline", "stream", "--source", f"kafka://{kafka_bootstrap}/{topic}",
            "--window", str(window_s), "--checkpoint", str(workdir / "checkpoint"),
            "--master", "local[2]", "--partitions", "2", "--store", store]  # fmt: skip
    if watermark_s is not None:
        argv += ["--watermark", str(watermark_s)]
    if trigger_s is not None:
        argv += ["--trigger", f"{trigger_s:g}"]
    result = FreshnessResult(window_s, rate=rate)
    try:
        job = children.start("stream", argv, env)
        wait_until(children, lambda: _WATERMARK.search(job.tail(200)) is not None,
                   "the streaming job", START_S)  # fmt: skip
        found = _WATERMARK.search(job.tail(200))
        if found:
            result.watermark_s, result.trigger_s = int(found.group(2)), float(found.group(3))
        report(f"streaming job up: {window_s} s windows, {result.watermark_s} s watermark, "
               f"a micro-batch every {result.trigger_s} s")  # fmt: skip
        _produce_and_watch(children, job, kafka_bootstrap, topic, store, result, windows,
                           quiet, report)  # fmt: skip
    finally:
        children.stop_all(grace_s=15)
        from pipeline import ticks_topic  # the job's clock topic

        delete_topics(kafka_bootstrap, [topic, ticks_topic(topic)])
    return result


def _produce_and_watch(children: Children, job: Any, bootstrap: str, topic: str, store: str,
                       result: FreshnessResult, windows: int, quiet: bool,
                       report: Callable[[str], None]) -> None:  # fmt: skip
    from kafka import KafkaProducer

    w = result.window_s
    began = time.time()
    first = int(began // w + 1) * w  # the first whole window's start (s)
    measured = [first + i * w for i in range(windows)]
    sent: dict[int, list[float]] = defaultdict(list)  # window start (s) → span starts (s)
    seen: dict[int, float] = {}  # window start (s) → its edges first readable (s)
    calls = _Calls()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    next_poll = 0.0

    cpu: dict[str, tuple[float, float]] = {}  # the job's CPU seconds over the windows

    def step(producing: bool) -> None:
        nonlocal next_poll
        now = time.time()
        for mark, mark_s in (("from", measured[0]), ("to", measured[-1] + w)):
            if now >= mark_s and mark not in cpu:
                cpu[mark] = (now, _cpu_s(job.pid))
        if producing:
            for at in calls.due(began, now, result.rate):
                for span in calls.spans(at):
                    producer.send(topic, span.to_json(), key=span.trace_id.encode())
                sent[int(at // w) * w].append(at)
            producer.flush(10)
        if now >= next_poll:
            next_poll = now + _POLL_S
            children_alive(children)
            for start in _readable(store, first, now):
                if start in sent and start not in seen:
                    seen[start] = time.time()
                    report(f"window {time.strftime('%H:%M:%S', time.gmtime(start))}: edges "
                           f"readable {seen[start] - sent[start][0]:.1f} s after its first "
                           f"span")  # fmt: skip
        time.sleep(0.05)

    def until(done: Callable[[], bool], deadline: float, producing: bool) -> None:
        while not done():
            if time.time() > deadline:
                raise LoopFailed(f"edges of windows {sorted(set(sent) - set(seen))} not "
                                 f"readable by {deadline - began:.0f} s; the job's log:\n"
                                 f"{job.tail(20)}")  # fmt: skip
            step(producing)

    try:  # generous deadlines: a loaded 2-core box
        until(lambda: all(s in seen for s in measured), measured[-1] + 6 * w + 120, True)
        if quiet:  # no span from now on: the window in progress waits for the job's clock
            last = max(sent)
            report(f"quiet from now: window {time.strftime('%H:%M:%S', time.gmtime(last))} "
                   f"holds {len(sent[last])} calls")  # fmt: skip
            until(lambda: last in seen, time.time() + 3 * w + 120, False)
            result.quiet_s = round(seen[last] - sent[last][0], 1)
    finally:
        producer.close(10)
    result.worst_s = [round(seen[s] - sent[s][0], 1) for s in measured]
    result.freshness_s = round(statistics.median(result.worst_s), 1)
    result.freshness_max_s = max(result.worst_s)
    ages = [seen[s] - at for s in measured for at in sent[s]]
    result.span_median_s = round(statistics.median(ages), 1)
    if "to" in cpu:
        result.job_cpu_cores = round((cpu["to"][1] - cpu["from"][1])
                                     / (cpu["to"][0] - cpu["from"][0]), 2)  # fmt: skip


def _cpu_s(pid: int) -> float:
    """CPU seconds the process and all its descendants (the JVM, Python workers) used."""
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


class _Calls:
    """Calls at a steady rate: each one a CLIENT span of ``fresh-consumer`` and the SERVER
    span of one of three ``fresh-provider`` instances it called."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._done = 0  # calls produced so far
        self._salt = secrets.token_hex(4)

    def due(self, began: float, now: float, rate: float) -> list[float]:
        """The times (s) of the calls due by ``now`` and not yet produced."""
        due = int((now - began) * rate)
        times = [began + i / rate for i in range(self._done, due)]
        self._done = max(self._done, due)
        return times

    def spans(self, at: float) -> tuple[SpanRecord, SpanRecord]:
        n = next(self._numbers)
        trace, client, start = f"{self._salt}{n:024x}", f"{n:015x}c", int(at * 1e6)
        method = "fresh.WorkService/work"
        return (
            SpanRecord(trace_id=trace, span_id=client, name=method, kind="CLIENT",
                       service="fresh-consumer", instance="127.0.0.1:7000",
                       peer_service="fresh-provider", start_us=start, duration_us=2_000),
            SpanRecord(trace_id=trace, span_id=f"{n:015x}d", parent_span_id=client,
                       name=method, kind="SERVER", service="fresh-provider",
                       instance=f"127.0.0.1:{7001 + n % 3}", start_us=start + 300,
                       duration_us=1_200),
        )  # fmt: skip


def _readable(store: str, since_s: int, now: float) -> list[int]:
    """The starts (s) of the windows since ``since_s`` whose edges the store holds."""
    from storage import StorageError, open_analytics_store

    try:
        with open_analytics_store(store, read_only=True) as analytics:
            edges = analytics.dependencies(since_s * 10**6, int(now * 1e6))
    except StorageError:
        return []  # not created yet
    return sorted({e.window_start_us // 10**6 for e in edges})


if __name__ == "__main__":  # python -m callscope.demo.freshness KAFKA_BOOTSTRAP WORKDIR [W]
    import json
    import sys

    out = measure_freshness(sys.argv[1], Path(sys.argv[2]),
                            window_s=int(sys.argv[3]) if len(sys.argv) > 3 else 60,
                            report=print)  # fmt: skip
    print(json.dumps(out.as_dict()))
