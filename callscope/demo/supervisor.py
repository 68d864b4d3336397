"""The demo's supervisor: start the loop's processes, drive faults, show progress, stop cleanly.

Order: registry (embedded) → collector → every service instance (all at once; each waits
for what it calls through the registry) → dashboard → load generator. Then once a second:
read the load's counters, the store and the weights, switch on faults that are due. On
``--duration`` or Ctrl-C (or SIGTERM): stop the load, the services (they flush their spans
at exit), wait for the collector to file what is left, stop the rest, print the summary.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callscope_contract import environment

from .backends import Backends
from .faults import Fault, FaultInbox, write_fault
from .feedback import FeedbackJob
from .load import read_stats
from .observe import StoreWatch, WeightsWatch
from .processes import Child, Children
from .progress import Progress
from .topology import LOADGEN, Instance, instances

__all__ = ["DemoFailed", "Options", "Supervisor"]

STARTUP_S = 180.0  # a dozen Python processes on a busy 2-core box
FEEDBACK_START_S = 420.0  # a JVM, then Spark's first job (tens of seconds to minutes here)
OPTIONAL = frozenset({"feedback"})  # its failure is reported, the demo goes on without it
DRAIN_S = 30.0
SETTLE_S = 5.0  # after a fault, before its effect is measured
INTERACTIVE_FAULT_AT_S = 20.0


class DemoFailed(Exception):
    """A part of the loop did not start or died; the message says which and shows its log."""


@dataclass
class Options:
    duration_s: float | None
    qps: float
    faults: list[Fault]
    balancer: str
    dashboard: bool
    dashboard_port: int
    feedback: bool = False  # the pipeline's weight feedback (feedback.py), when available
    window_s: int = 10


@dataclass
class Run:
    """What the supervisor learnt, for the summary."""

    registry_url: str = ""
    dashboard_url: str | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    load_started_us: int = 0
    ended_us: int = 0
    applied: list[tuple[float, Fault]] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)
    feedback: dict[str, Any] = field(default_factory=dict)
    feedback_error: str | None = None


def default_fault_at(duration_s: float | None) -> float:
    return duration_s / 3 if duration_s else INTERACTIVE_FAULT_AT_S


class Supervisor:
    def __init__(self, options: Options, backends: Backends, workdir: Path) -> None:
        self.options = options
        self.backends = backends
        self.workdir = workdir
        for sub in ("run", "logs", "faults", "cache"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        self.children = Children(workdir / "logs")
        self.run = Run()
        self.store = StoreWatch(backends.store_url)
        self.weights: WeightsWatch | None = None
        self.feedback: FeedbackJob | None = None
        self._crashed: set[str] = set()
        self._fault_state: dict[Instance, dict[str, float]] = {}
        self.inbox = FaultInbox(workdir / "faults")  # what the dashboard asks for
        self._stopped = False
        self.removed = False  # what the run made on the real services (run_demo's job)

    # -- start -------------------------------------------------------------------------------
    def _env(self, service: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCOPE_")}
        return {**inherited, **self.backends.service_env, "PYTHONUNBUFFERED": "1",
                environment.CALLSCOPE_SERVICE_NAME: service}  # fmt: skip

    def start(self) -> None:
        self.run.registry_url = self.backends.registry_url or self._start_registry()
        self.weights = WeightsWatch(self.run.registry_url)
        print(f"registry   {self.run.registry_url}", flush=True)
        self.children.start(
            "collector",
            ["collector", "--store", self.backends.store_url, *self.backends.collector_args,
             "--http-port", "-1", "--grpc-port", "-1", "--batch-wait-ms", "100"],
            self._env("collector"),
        )  # fmt: skip
        print(f"collector  {self.backends.describe()}", flush=True)
        self.feedback = FeedbackJob(
            self.backends.spans_topic,
            self.backends.store_url,
            self.run.registry_url,
            self.workdir,
            self.options.window_s,
        )
        if self.options.feedback:
            self.children.start("feedback", self.feedback.argv, self._env("feedback"))
        for instance in instances():
            self.children.start(
                instance.label,
                ["demo-service", instance.label, "--registry", self.run.registry_url,
                 "--workdir", str(self.workdir), "--balancer", self.options.balancer],
                self._env(instance.service),
            )  # fmt: skip
        if self.options.dashboard:
            self.children.start(
                "dashboard",
                ["dashboard", "--store", self.backends.store_url, "--registry",
                 self.run.registry_url, "--port", str(self.options.dashboard_port),
                 "--demo-faults", str(self.workdir / "faults")],
                self._env("dashboard"),
            )  # fmt: skip
        self._wait_for_services()
        if self.options.dashboard:
            line = self._wait_for_line(self.children.started["dashboard"], "callscope dashboard: ")
            self.run.dashboard_url = line.split()[0]
            print(f"dashboard  {self.run.dashboard_url}", flush=True)
        if self.options.feedback:
            self._wait_for_feedback()
        self.children.start(
            "loadgen",
            ["demo-load", "--registry", self.run.registry_url, "--workdir", str(self.workdir),
             "--qps", f"{self.options.qps:g}"],
            self._env(LOADGEN),
        )  # fmt: skip
        self.run.load_started_us = int(time.time() * 1_000_000)

    def _start_registry(self) -> str:
        child = self.children.start(
            "registry",
            ["registry", "--db", str(self.workdir / "registry.db"), "--port", "0",
             "--summary-interval", "0"],
            self._env("registry"),
        )  # fmt: skip
        address = self._wait_for_line(child, "callscope registry on ").split()[0].rstrip(",")
        return f"callscope://{address}"

    def _wait_for_feedback(self) -> None:
        """Spark started and warmed up, so the load's first windows are answered at once."""
        print("feedback   starting Spark (local) for the pipeline's weight feedback ...",
              flush=True)  # fmt: skip
        started = time.monotonic()
        while time.monotonic() - started < FEEDBACK_START_S:
            self._check_alive()
            if self.run.feedback_error:
                return
            if self.feedback and self._feedback_state().get("state") == "running":
                print(f"feedback   {self.feedback.describe()}  "
                      f"({time.monotonic() - started:.0f} s to start)", flush=True)  # fmt: skip
                return
            time.sleep(0.5)
        self._optional_failed(self.children.started["feedback"], "did not start in time")

    def _feedback_state(self) -> dict[str, Any]:
        child = self.children.started.get("feedback")
        if self.feedback is None or child is None:
            return {}
        return self.feedback.state(child.tail(100_000))

    def _optional_failed(self, child: Child, why: str) -> None:
        child.stop(grace_s=5)
        self.run.feedback_error = f"{child.name} {why}; its log ({child.log}):\n{child.tail(8)}"
        print(f"callscope demo: {self.run.feedback_error}\n(the demo goes on without it)",
              flush=True)  # fmt: skip

    def _wait_for_line(self, child: Child, prefix: str) -> str:
        """The rest of the first line of ``child``'s log that starts with ``prefix``."""
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            for line in child.tail(200).splitlines():
                if prefix in line:
                    return line.split(prefix, 1)[1].strip()
            self._check_alive()
            time.sleep(0.2)
        raise DemoFailed(f"{child.name} did not start within {STARTUP_S:.0f} s; its log "
                         f"({child.log}):\n{child.tail()}")  # fmt: skip

    def _wait_for_services(self) -> None:
        pending = {i.label for i in instances()}
        started = time.monotonic()
        print(f"services   starting {len(pending)} processes ...", flush=True)
        while pending:
            for label in sorted(pending):
                path = self.workdir / "run" / f"{label}.addr"
                if path.is_file():
                    self.run.addresses[label] = path.read_text()
                    pending.discard(label)
            self._check_alive()
            if time.monotonic() - started > STARTUP_S:
                child = self.children.started[sorted(pending)[0]]
                raise DemoFailed(f"{child.name} did not start within {STARTUP_S:.0f} s; its "
                                 f"log ({child.log}):\n{child.tail()}")  # fmt: skip
            time.sleep(0.2)
        print(f"services   {_topology_line(self.run.addresses)}  "
              f"({time.monotonic() - started:.0f} s to start)", flush=True)  # fmt: skip

    def _check_alive(self) -> None:
        for child in self.children.dead():
            if child.name in OPTIONAL and not self.run.feedback_error:
                self._optional_failed(child, f"exited (status {child.process.returncode})")
            elif child.name not in self._crashed and child.name not in OPTIONAL:
                raise DemoFailed(f"{child.name} exited (status {child.process.returncode}); its "
                                 f"log ({child.log}):\n{child.tail()}")  # fmt: skip

    # -- run ---------------------------------------------------------------------------------
    def watch(self) -> None:
        """Until ``--duration`` is over (or Ctrl-C): faults, progress."""
        schedule = sorted(
            ((f.at_s if f.at_s is not None else default_fault_at(self.options.duration_s), f)
             for f in self.options.faults), key=lambda pair: pair[0],
        )  # fmt: skip
        progress = Progress(self.options.duration_s)
        started = time.monotonic()
        polled_weights = 0.0
        try:
            while True:
                elapsed = time.monotonic() - started
                while schedule and schedule[0][0] <= elapsed:
                    at_s, fault = schedule.pop(0)
                    self._apply(fault)
                    self.run.applied.append((at_s, fault))
                    progress.write(f"fault      at {elapsed:.0f} s: {fault.describe()}")
                self._take_requests(elapsed, progress)
                self._check_alive()
                self.run.load = read_stats(self.workdir / "run")
                self.run.feedback = self._feedback_state()
                self.store.poll()
                if self.weights is not None and elapsed - polled_weights >= 2:
                    self.weights.poll()
                    polled_weights = elapsed
                progress.update(self._fields())
                if self.options.duration_s is not None and elapsed >= self.options.duration_s:
                    break
                time.sleep(1.0)
        finally:
            progress.close()

    def _fields(self) -> dict[str, object]:
        load = self.run.load
        weights = self.weights.describe() if self.weights else "none"
        return {"calls": load.get("calls", 0), "errors": load.get("errors", 0),
                "spans": self.store.spans, "edges": len(self.store.edges),
                **({"windows": self.run.feedback.get("windows", 0)} if self.options.feedback
                   else {}),
                "weights": weights}  # fmt: skip

    def _take_requests(self, elapsed: float, progress: Progress) -> None:
        """Apply the faults the dashboard asked for since the last look."""
        faults, refused = self.inbox.take()
        for fault in faults:
            if fault.kind == "crash" and fault.instance.label in self._crashed:
                continue
            self._apply(fault)
            self.run.applied.append((elapsed, fault))
            progress.write(f"fault      at {elapsed:.0f} s: {fault.describe()} (dashboard)")
        for reason in refused:
            progress.write(f"fault      refused a request from the dashboard: {reason}")

    def _apply(self, fault: Fault) -> None:
        if fault.kind == "crash":
            self._crashed.add(fault.instance.label)
            self.children.started[fault.instance.label].signal(signal.SIGKILL)
            return
        state = self._fault_state.get(fault.instance, {})
        self._fault_state[fault.instance] = write_fault(self.workdir / "faults", fault, state)

    # -- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Load first, then the services (they flush their spans), the collector once the
        spans are in, the rest last. Safe to call twice; a second Ctrl-C kills at once."""
        if self._stopped:
            return
        self._stopped = True
        self.run.ended_us = self.run.ended_us or int(time.time() * 1_000_000)
        started = self.children.started
        try:
            self.children.stop(["loadgen"], grace_s=10)
            self.run.load = read_stats(self.workdir / "run") if "loadgen" in started else {}
            self.children.stop([i.label for i in reversed(instances())], grace_s=15)
            self._drain()
        except KeyboardInterrupt:
            pass
        finally:
            if self.weights is not None:
                self.weights.close()  # before the registry goes
            self.store.close()
            self.children.stop_all(grace_s=10)

    def _drain(self) -> None:
        """Wait until the collector has filed what the processes spooled (count steady)."""
        if "collector" not in self.children.started:
            return
        deadline = time.monotonic() + DRAIN_S
        last, steady = -1, 0
        while time.monotonic() < deadline and steady < 3:
            self.store.poll()
            steady = steady + 1 if self.store.spans == last else 0
            last = self.store.spans
            time.sleep(1.0)


def _topology_line(addresses: dict[str, str]) -> str:
    by_service: dict[str, int] = {}
    for label in addresses:
        service = label.split("#", 1)[0]
        by_service[service] = by_service.get(service, 0) + 1
    return ", ".join(f"{s} x{n}" if n > 1 else s for s, n in by_service.items())
