"""Interim weight feedback for the demo, until the pipeline's streaming job lands:
``callscope demo-feedback`` (internal), the pipeline's batch job once per closed window.

Every ``--window`` seconds, once a window has closed and its spans are filed, the
pipeline's batch job (:func:`pipeline.run_batch`, Spark local) computes that window from
the span store and writes its dependency graph, top callers and latencies to the store's
analytics (the dashboard's dependencies and services pages). Its instance-level edges give
each provider instance's calls, errors and p95 (:class:`pipeline.InstanceHealth`), and
:func:`pipeline.feed_back` decides and publishes ``governance/<service>/weights`` -- the
consumers' balancers apply it at their next call. The demo computes no weight itself.

Both jobs also evaluate the demo's alarm rules (:data:`DEMO_ALARMS`, written to the
work directory and passed as ``--alarms``; the registry's ``governance/_global/alarms``
adds to them), so the slowed instance raises alarms on the dashboard's Alarms page.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .topology import SERVICES

__all__ = ["DEMO_ALARMS", "feedback_available", "read_status", "weight_job_status"]

STATUS_FILE = "feedback.json"
ALARMS_FILE = "alarms.json"
DEMO_ALARMS = {
    "rules": {
        "slow-service": {"metric": "p99_ms", "op": ">", "threshold": 150, "period": 2,
                         "count": 1, "silence": 3, "min_calls": 5,
                         "message": "{name}: p99 {value} ms over {threshold} ms"},
        "slow-instance": {"metric": "p99_ms", "op": ">", "threshold": 150, "scope": "instance",
                          "silence": 3, "min_calls": 5,
                          "message": "{name}: p99 {value} ms over {threshold} ms"},
        "failing-service": {"metric": "error_rate", "op": ">", "threshold": 5, "period": 2,
                            "count": 2, "min_calls": 5,
                            "message": "{name}: {value}% of calls failed"},
    }
}  # fmt: skip
"""The demo's alarm rules (the instance rule needs the streaming job's per-instance windows)."""
DEFAULT_WINDOW_S = 10
LAG_S = 3.0
"""How long after a window closes its spans are taken as filed (spool flush, collector)."""


def feedback_available() -> str | None:
    """None when this build can feed weights back; else why not."""
    try:
        import pipeline
    except ImportError:
        return "the pipeline package is not installed"
    if not hasattr(pipeline, "feed_back") or not hasattr(pipeline, "run_batch"):
        return "no pipeline job on this build computes governance/<service>/weights yet"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]', or `make demo`)"
    return None


def weight_job_status(running: bool) -> str:
    missing = feedback_available()
    if missing:
        return f"absent: {missing}"
    if not running:
        return "off (--no-feedback)"
    return ("interim: the pipeline's batch job (run_batch) over each closed window, then "
            "feed_back; the streaming job replaces it when it lands")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-feedback")  # internal: no help, so not listed
    p.add_argument("--store", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--window", type=int, default=DEFAULT_WINDOW_S)
    p.add_argument("--alarms", type=Path, default=None)
    p.set_defaults(handler=run_feedback)


def read_status(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_status(run_dir: Path, status: dict[str, Any]) -> None:
    path = run_dir / STATUS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(status))
    os.replace(temporary, path)


def run_feedback(args: argparse.Namespace) -> int:
    from pipeline import AlarmJob, feed_back, load_rules, run_batch, spark_session
    from rpc.registry import connect
    from storage import open_analytics_store, open_span_store

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_dir = args.workdir / "run"
    status: dict[str, Any] = {"state": "starting Spark", "windows": 0, "changes": 0}
    _write_status(run_dir, status)
    spark = spark_session(
        "local[1]", app_name="callscope-demo-feedback",
        conf={"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
              "spark.sql.shuffle.partitions": "2"},
    )  # fmt: skip
    registry = connect(args.registry)
    alarms = AlarmJob(load_rules(args.alarms) if args.alarms else [], registry)
    window_us = args.window * 1_000_000
    done_until = (int(time.time() * 1_000_000) // window_us) * window_us  # whole windows only
    status["state"] = "warming up"
    _write_status(run_dir, status)
    with open_span_store(args.store):
        pass  # there, even before the collector's first batch
    # the first job compiles and loads everything (tens of seconds here): done before the
    # load starts, on a window before it, so the first real window is answered in seconds
    run_batch(spark, args.store, done_until - window_us, done_until, window_s=args.window)
    status["state"] = "running"
    _write_status(run_dir, status)
    try:
        with open_analytics_store(args.store) as analytics:
            while not stop.is_set():
                closed = int((time.time() - LAG_S) * 1_000_000) // window_us * window_us
                if closed <= done_until:
                    stop.wait(0.5)
                    continue
                start = max(done_until, closed - window_us)  # behind: skip to the newest
                try:
                    result = run_batch(spark, args.store, start, closed, stores=[args.store],
                                       window_s=args.window, alarms=alarms)  # fmt: skip
                except Exception:
                    if stop.is_set():  # SIGTERM reached the JVM too: its jobs were cancelled
                        break
                    raise
                done_until = closed
                status["windows"] += 1
                status["edges"] = sorted({f"{e.caller}->{e.callee}" for e in result.edges
                                          if e.level == "service"})  # fmt: skip
                for service, health in _health(result.edges).items():
                    decisions = feed_back(registry, SERVICES[service].rpc_name, health,
                                          analytics=analytics)  # fmt: skip
                    changed = [d for d in decisions if d.changed]
                    status["changes"] += len(changed)
                    for d in changed:
                        print(f"demo-feedback: {service} {d.instance} {d.previous} -> "
                              f"{d.weight}: {d.reason}", flush=True)  # fmt: skip
                status["alarms"] = status.get("alarms", 0) + len(result.alarms)
                status["last_window_s"] = round(result.seconds, 1)
                _write_status(run_dir, status)
    finally:
        registry.close()
        spark.stop()
    return 0


def _health(edges: Iterable[Any]) -> dict[str, list[Any]]:
    """Each provider instance's calls, errors and p95 (calls-weighted over its callers), for
    the services that run several instances: those the weights can shift traffic among."""
    from pipeline import InstanceHealth

    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for edge in edges:
        spec = SERVICES.get(edge.callee)
        if edge.level != "instance" or spec is None or spec.instances < 2:
            continue
        total = totals[(edge.callee, edge.callee_instance)]
        total[0] += edge.calls
        total[1] += edge.errors
        total[2] += edge.p95_ms * edge.calls
    health: dict[str, list[Any]] = defaultdict(list)
    for (service, instance), (calls, errors, weighted) in sorted(totals.items()):
        latency = weighted / calls if calls else 0.0
        health[service].append(InstanceHealth(instance, int(calls), int(errors), latency))
    return health


class FeedbackJob:
    """Which job feeds the weights back, how to start it and how to read its state.

    On Kafka (``--stack real``) it is the pipeline's streaming job (``callscope pipeline
    stream``); on the embedded defaults, which have no Kafka for it to read, the interim
    ``demo-feedback`` above.
    """

    def __init__(self, kafka_topic: str | None, store_url: str, registry_url: str,
                 workdir: Path, window_s: int) -> None:  # fmt: skip
        self.streaming = kafka_topic is not None
        self.window_s = window_s
        self._run_dir = workdir / "run"
        rules = workdir / ALARMS_FILE
        workdir.mkdir(parents=True, exist_ok=True)
        rules.write_text(json.dumps(DEMO_ALARMS, indent=1))
        if kafka_topic is not None:
            self.argv = ["pipeline", "stream", "--source", f"kafka://{kafka_topic}",
                         "--window", str(window_s), "--checkpoint", str(workdir / "stream"),
                         "--master", "local[1]", "--partitions", "2", "--store", store_url,
                         "--registry", registry_url, "--alarms", str(rules)]  # fmt: skip
        else:
            self.argv = ["demo-feedback", "--store", store_url, "--registry", registry_url,
                         "--workdir", str(workdir), "--window", str(window_s),
                         "--alarms", str(rules)]  # fmt: skip

    def describe(self) -> str:
        if self.streaming:
            return f"the pipeline's streaming job, {self.window_s} s windows from Kafka"
        return f"every {self.window_s} s window: the pipeline's batch job, then its feedback"

    def state(self, log: str) -> dict[str, Any]:
        """``state`` (running once it answers windows), ``windows`` done, ``edges`` seen."""
        if not self.streaming:
            return read_status(self._run_dir)
        lines = log.splitlines()
        running = any("streaming kafka://" in line for line in lines)
        windows = sum("instance windows closed" in line for line in lines)
        return {"state": "running" if running else "starting", "windows": windows}

    def status(self, running: bool) -> str:
        if self.streaming and running:
            return "streaming: callscope pipeline stream (run_stream) over the run's spans topic"
        return weight_job_status(running)
