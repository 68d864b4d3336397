"""The closed loop in miniature, with real processes: three providers behind a consumer.

:func:`run_closed_loop` starts an embedded registry, the pipeline's streaming job
(``callscope pipeline stream`` over a Kafka topic of the run's own, short windows, weights
fed back to the registry), three providers and a consumer (:mod:`.loop_processes`), all as
separate processes. Once the consumer's traffic is steady it slows provider 2 by
``delay_ms`` at the start of a window, watches ``governance/loop.WorkService/weights``,
and reads from the consumer's own log which provider served each call. Then it lets the
provider recover and waits for its share to come back. Nobody acts in between: the
streaming job computes each window's health, the weights follow, the consumer's balancer
applies them.

Measured (:class:`LoopResult`): the slow provider's share of the calls before, under the
weights that first cut it to at most :data:`SHIFT_RATIO` of that share, and after
recovery; ``windows_to_shift``: which window after the slowdown began decided the slow
provider's weight in force then (1: the first whole slow window; read from its entry's
``updated_us``, the end of the window the job decided it on); the seconds each took by
the wall clock; ``freshness_s``: from the start of a window (its oldest span) until its
dependency edges were readable in the job's store (the median over the run's windows).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from callscope_contract import environment, weights_key

from .faults import Fault, write_fault
from .loop_processes import CALLS_FILE, SERVICE, provider_instance
from .processes import Children

__all__ = ["SHIFT_RATIO", "LoopFailed", "LoopResult", "run_closed_loop"]

PROVIDERS = 3
SLOW = 2  # the provider slowed down
SHIFT_RATIO = 0.3
"""The slow provider has shifted once its share is at most this much of what it was."""
RECOVERED_RATIO = 0.75
"""... and has recovered once it is back to at least this much."""
START_S = 300.0  # a JVM and Spark's first streaming batch on a busy 2-core box


class LoopFailed(Exception):
    """A process did not start or died, or the loop did not close in time: says which."""


@dataclass
class LoopResult:
    window_s: int
    qps: float
    share_before: float = 0.0
    share_shifted: float | None = None  # under the weights that shifted it
    share_recovered: float | None = None
    windows_to_shift: int | None = None
    shift_s: float | None = None  # slowdown → weights in force that shifted it
    recover_s: float | None = None  # recovery → share back
    freshness_s: float | None = None  # median: a window's first span → its edges readable
    slow_address: str = ""
    weights: list[dict[str, Any]] = field(default_factory=list)  # each document seen

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Calls:
    """The consumer's log: (sent, provider) per answered call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def share(self, address: str, start: float, end: float) -> tuple[float, int]:
        """``address``'s share of the calls sent in [start, end), and how many there were."""
        total = mine = 0
        try:
            text = self.path.read_text()
        except OSError:
            return 0.0, 0
        for line in text.splitlines():
            sent, _, served = line.partition(" ")
            try:
                when = float(sent)
            except ValueError:
                continue
            if start <= when < end:
                total += 1
                mine += served == address
        return (mine / total if total else 0.0), total


def run_closed_loop(
    kafka_bootstrap: str,
    workdir: Path,
    *,
    window_s: int = 5,
    qps: float = 50.0,
    delay_ms: int = 200,
    max_windows: int = 8,
    report: Callable[[str], None] = lambda line: None,
) -> LoopResult:
    """Run the loop once (see the module docstring); the processes are stopped on return."""
    for sub in ("run", "logs", "faults", "cache"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    run = f"callscope-loop-{secrets.token_hex(4)}"
    topic = f"{run}.spans"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCOPE_")}
    env.update({
        "PYTHONUNBUFFERED": "1",
        environment.CALLSCOPE_KAFKA_BOOTSTRAP: kafka_bootstrap,
        environment.CALLSCOPE_SPANS_TOPIC: topic,
        environment.CALLSCOPE_KPIS_TOPIC: f"{run}.kpis",
    })  # fmt: skip
    create_topics(kafka_bootstrap, [topic, f"{run}.kpis"])
    children = Children(workdir / "logs")
    result = LoopResult(window_s, qps)
    try:
        registry_url = _start_registry(children, workdir, env)
        report(f"registry {registry_url}")
        stream = children.start("stream", [
            "pipeline", "stream", "--source", f"kafka://{kafka_bootstrap}/{topic}",
            "--window", str(window_s), "--checkpoint", str(workdir / "checkpoint"),
            "--master", "local[2]", "--partitions", "2",
            "--store", f"sqlite://{workdir / 'analytics.db'}", "--registry", registry_url,
        ], {**env, environment.CALLSCOPE_SERVICE_NAME: "pipeline"})  # fmt: skip
        provider_env = {**env, environment.CALLSCOPE_SERVICE_NAME: "loop-provider"}
        for n in range(1, PROVIDERS + 1):
            children.start(f"provider{n}", ["demo-loop-provider", str(n), "--registry",
                           registry_url, "--workdir", str(workdir)], provider_env)  # fmt: skip
        addresses = [_wait_for_file(children, workdir / "run" / f"provider{n}.addr")
                     for n in range(1, PROVIDERS + 1)]  # fmt: skip
        result.slow_address = addresses[SLOW - 1]
        wait_until(children, lambda: "streaming kafka://" in stream.tail(200),
                   "the streaming job")  # fmt: skip
        report(f"providers {', '.join(addresses)}; streaming job up")
        children.start("consumer", ["demo-loop-consumer", "--registry", registry_url,
                       "--workdir", str(workdir), "--qps", f"{qps:g}"],
                       {**env, environment.CALLSCOPE_SERVICE_NAME: "loop-consumer"})  # fmt: skip
        calls = _Calls(workdir / "run" / CALLS_FILE)
        watch = _WeightsWatch(registry_url, result, f"sqlite://{workdir / 'analytics.db'}")
        try:
            _measure(children, stream, calls, watch, workdir, result, delay_ms, max_windows,
                     report)  # fmt: skip
        finally:
            watch.close()
        result.freshness_s = watch.freshness_s()
    finally:
        children.stop_all(grace_s=15)
        from pipeline import ticks_topic  # the job's clock topic

        delete_topics(kafka_bootstrap, [topic, ticks_topic(topic), f"{run}.kpis"])
    return result


def _measure(children: Children, stream: Any, calls: _Calls, watch: _WeightsWatch,
             workdir: Path, result: LoopResult, delay_ms: int, max_windows: int,
             report: Callable[[str], None]) -> None:  # fmt: skip
    w = result.window_s
    slow = result.slow_address
    # steady traffic, and the streaming job keeping up with it (it closes windows)
    load_began = time.time()

    def keeping_up() -> bool:  # three windows of load, the newest's edges two windows old
        watch.poll()
        newest, now = watch.newest_window_s(), time.time()
        return newest is not None and now >= load_began + 3 * w and newest + w >= now - 2 * w

    wait_until(children, keeping_up, "the stream keeping up with the load")
    t0 = _next_window_start(w)
    _sleep_until(t0)
    result.share_before, n = calls.share(slow, t0 - 2 * w, t0)
    report(f"before: {slow} served {result.share_before:.1%} of {n} calls; slowing it")
    fault = provider_instance(SLOW)
    write_fault(workdir / "faults", Fault("slow", fault, None, delay_ms=delay_ms), {})
    watch.poll()
    start_version = watch.version
    deadline = t0 + max_windows * w + 30  # + the job's lag: watermark, batches
    while time.time() < deadline and result.windows_to_shift is None:
        children_alive(children)
        watch.poll()
        for seen in list(result.weights):
            if seen["version"] <= start_version or "share" in seen:
                continue
            following = [s["seen_s"] for s in result.weights if s["version"] > seen["version"]]
            end = min([seen["seen_s"] + w, *following])
            if time.time() < seen["seen_s"] + w and not following:
                continue  # wait for a window's worth of calls under these weights
            share, n = calls.share(slow, seen["seen_s"], end)
            seen["share"] = round(share, 4)
            if n >= 10 and share <= SHIFT_RATIO * result.share_before:
                result.share_shifted = share
                decided_s = seen["updated_us"].get(slow, seen["computed_at_us"]) / 1e6
                result.windows_to_shift = max(1, round((decided_s - t0) / w))
                result.shift_s = round(seen["seen_s"] - t0, 1)
                break
        time.sleep(0.25)
    if result.windows_to_shift is None:
        raise LoopFailed(f"{slow}'s share did not fall to {SHIFT_RATIO:.0%} of "
                         f"{result.share_before:.1%} in {max_windows} windows; weights seen: "
                         f"{result.weights}; the job's log:\n{stream.tail(20)}")  # fmt: skip
    report(f"shifted: {result.share_shifted:.1%} after {result.windows_to_shift} windows "
           f"({result.shift_s} s); recovering it")  # fmt: skip
    t1 = _next_window_start(w)
    _sleep_until(t1)
    write_fault(workdir / "faults", Fault("slow", fault, None, delay_ms=0), {})
    deadline = t1 + 3 * max_windows * w + 30  # climbs back slower than it fell, by design
    while time.time() < deadline:
        children_alive(children)
        watch.poll()
        now = time.time()
        share, n = calls.share(slow, now - w, now)
        if now - t1 >= w and n >= 10 and share >= RECOVERED_RATIO * result.share_before:
            result.share_recovered, result.recover_s = share, round(now - t1, 1)
            report(f"recovered: {share:.1%} of the calls after {result.recover_s} s")
            return
        time.sleep(1.0)
    raise LoopFailed(f"{slow}'s share did not come back to {RECOVERED_RATIO:.0%} of "
                     f"{result.share_before:.1%}; weights seen: {result.weights}")  # fmt: skip


class _WeightsWatch:
    """Each version of the weights document, with when it was seen and what it says; and
    when each window's edges were first readable in the job's store."""

    def __init__(self, registry_url: str, result: LoopResult, store_url: str) -> None:
        from rpc.registry import connect

        self._registry = connect(registry_url)
        self._result = result
        self.version = 0
        self._store_url = store_url
        self._since_us = (int(time.time()) // result.window_s + 1) * result.window_s * 10**6
        self._edges_seen: dict[int, float] = {}  # window start (µs) → first seen (s)
        self._edges_polled = 0.0

    def poll(self) -> None:
        self._poll_edges()
        self._poll_weights()

    def _poll_edges(self) -> None:
        from storage import StorageError, open_analytics_store

        now = time.time()
        if now - self._edges_polled < 1.0:
            return
        self._edges_polled = now
        try:
            with open_analytics_store(self._store_url, read_only=True) as analytics:
                edges = analytics.dependencies(self._since_us, int(now * 1e6))
        except StorageError:
            return  # not created yet
        for edge in edges:
            self._edges_seen.setdefault(edge.window_start_us, now)

    def newest_window_s(self) -> float | None:
        """The start of the newest window whose edges are in the store (s), if any."""
        return max(self._edges_seen) / 1e6 if self._edges_seen else None

    def freshness_s(self) -> float | None:
        ages = sorted(seen - start / 1e6 for start, seen in self._edges_seen.items())
        return round(ages[len(ages) // 2], 1) if ages else None

    def _poll_weights(self) -> None:
        found = self._registry.get_config(weights_key(SERVICE))
        if found is None or found.version == self.version:
            return
        self.version = found.version
        doc = found.value
        self._result.weights.append({
            "version": found.version, "seen_s": time.time(),
            "computed_at_us": doc.get("computed_at_us", 0),
            "weights": {a: e["weight"] for a, e in doc.get("weights", {}).items()},
            # the end of the window whose data set each instance's weight
            "updated_us": {a: e.get("updated_us", 0) for a, e in doc.get("weights", {}).items()},
        })  # fmt: skip

    def close(self) -> None:
        self._registry.close()


def children_alive(children: Children) -> None:
    for child in children.dead():
        raise LoopFailed(f"{child.name} exited ({child.process.returncode}); its log "
                         f"({child.log}):\n{child.tail()}")  # fmt: skip


def wait_until(children: Children, ready: Callable[[], bool], what: str,
               timeout_s: float = START_S) -> None:  # fmt: skip
    """Until ``ready()``, while every child lives, for ``timeout_s`` at most."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        children_alive(children)
        if time.monotonic() > deadline:
            raise LoopFailed(f"{what}: not ready in {timeout_s:.0f} s")
        time.sleep(0.3)


def _wait_for_file(children: Children, path: Path) -> str:
    wait_until(children, path.is_file, path.name)
    return path.read_text()


def _start_registry(children: Children, workdir: Path, env: dict[str, str]) -> str:
    child = children.start("registry", ["registry", "--db", str(workdir / "registry.db"),
                           "--port", "0", "--summary-interval", "0"], env)  # fmt: skip
    prefix = "callscope registry on "
    wait_until(children, lambda: prefix in child.tail(50), "the registry")
    line = next(x for x in child.tail(50).splitlines() if prefix in x)
    return "callscope://" + line.split(prefix, 1)[1].split()[0].rstrip(",")


def _next_window_start(window_s: int) -> float:
    """A little after the next window boundary (epoch-aligned, as the job's windows)."""
    return (time.time() // window_s + 1) * window_s + 0.05


def _sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


def create_topics(bootstrap: str, topics: list[str]) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(t, 1, 1) for t in topics])
    finally:
        admin.close()


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics(topics)
    except Exception as err:  # best effort: the run's result stands
        print(f"callscope loop: could not delete {topics}: {err}", flush=True)
    finally:
        admin.close()


if __name__ == "__main__":  # python -m callscope.demo.loop KAFKA_BOOTSTRAP WORKDIR
    import sys

    out = run_closed_loop(sys.argv[1], Path(sys.argv[2]), report=print)
    print(json.dumps(out.as_dict()))
