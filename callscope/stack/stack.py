"""The stack as a whole: bring services up, report their state, print endpoints, take them down.

``up`` is idempotent: a service already running (ours, from PID files) or already served on its
port by someone else (``docker compose up``) is left alone. Everything it starts gets PID files
in the run directory; ``down`` stops exactly those PIDs.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from callscope.stack import leases
from callscope.stack.errors import NotReady, StackError
from callscope.stack.fetch import Report, ensure_fetched
from callscope.stack.model import ProcessStatus, ServiceStatus, UpResult
from callscope.stack.process import PidRecord, port_busy, read_pid, rss_bytes, spawn, stop, tail
from callscope.stack.recipe import Runtime, Service
from callscope.stack.services import SERVICES
from callscope.stack.settings import HOST, StackPaths, default_timeout
from callscope.stack.ticker import Ticker, to_stderr
from callscope.stack.toolchain import find_java


class Stack:
    """The services of one stack directory (``CALLSCOPE_STACK_DIR``)."""

    def __init__(
        self,
        paths: StackPaths | None = None,
        report: Report = to_stderr,
        timeout_s: float | None = None,
        catalog: dict[str, type[Service]] | None = None,
    ) -> None:
        self.paths = paths or StackPaths.default()
        self.catalog = catalog if catalog is not None else SERVICES
        self._lock_depth = 0
        self.report = report
        self.timeout_s = timeout_s if timeout_s is not None else default_timeout()

    # -- lookup ---------------------------------------------------------------------------

    def services(self, names: Sequence[str] = ()) -> list[Service]:
        """The named services (all when none are named), in start order."""
        unknown = [n for n in names if n not in self.catalog]
        if unknown:
            known = ", ".join(self.catalog)
            raise StackError("UNKNOWN_SERVICE", f"unknown {', '.join(unknown)}; known: {known}")
        return [cls() for name, cls in self.catalog.items() if not names or name in names]

    def _pid_file(self, svc: Service, process: str) -> Path:
        return self.paths.service_dir(svc.name) / f"{process}.pid"

    def _log(self, svc: Service, process: str) -> Path:
        return self.paths.service_dir(svc.name) / f"{process}.log"

    def _records(self, svc: Service) -> list[PidRecord | None]:
        return [read_pid(self._pid_file(svc, p)) for p in svc.processes]

    # -- status ---------------------------------------------------------------------------

    def status(self, names: Sequence[str] = ()) -> list[ServiceStatus]:
        return [self._status(svc) for svc in self.services(names)]

    def _status(self, svc: Service) -> ServiceStatus:
        records = self._records(svc)
        alive = [r is not None and r.alive() for r in records]
        ready, detail = _probe(svc)
        if all(alive):
            state = "running" if ready else "starting"
        elif any(alive):
            state, detail = "crashed", "some of its processes exited; see their logs"
        elif ready:
            state, detail = "external", f"served on {HOST}:{svc.client_port}, not started by us"
        else:
            state = "stopped"
            if any(records):
                detail = "stale PID file (the process is gone)"
        procs = [
            ProcessStatus(
                name=p,
                pid=r.pid if r else None,
                alive=a,
                rss_bytes=rss_bytes(r.pid) if r and a else 0,
                log=str(self._log(svc, p)),
            )
            for p, r, a in zip(svc.processes, records, alive, strict=True)
        ]
        return ServiceStatus(
            name=svc.name,
            version=svc.artifact.version,
            state=state,
            ready=ready,
            detail=detail,
            heap=svc.heap,
            ports={p.role: p.number for p in svc.ports},
            env=svc.env(),
            run_dir=str(self.paths.service_dir(svc.name)),
            processes=procs,
        )

    def env(self, names: Sequence[str] = ()) -> dict[str, str]:
        """Endpoint variables of the named services (their fixed addresses)."""
        out: dict[str, str] = {}
        for svc in self.services(names):
            out.update(svc.env())
        return out

    def fetch(self, names: Sequence[str] = ()) -> dict[str, Path]:
        """Fetch the distributions without starting anything (a CI cache warm-up)."""
        return {
            svc.name: ensure_fetched(svc.artifact, self.paths.dist, self.report)
            for svc in self.services(names)
        }

    # -- up -------------------------------------------------------------------------------

    def use(self, names: Sequence[str]) -> list[UpResult]:
        """``up`` for a test session: take a lease on each service, and mark those it had to
        start so that ``release`` stops them once no other live session uses them."""
        with self._lock():
            results = self.up(names, raise_errors=False)
            for result in results:
                service_dir = self.paths.service_dir(result.name)
                if result.ok:
                    leases.take(service_dir)
                if result.ok and result.started:
                    leases.mark_auto(service_dir, True)
        return results

    def release(self, names: Sequence[str]) -> list[str]:
        """Give back this session's leases; stop auto-started services nobody else uses."""
        stopped = []
        with self._lock():
            for svc in reversed(self.services(names)):
                service_dir = self.paths.service_dir(svc.name)
                leases.give_back(service_dir)
                if leases.is_auto(service_dir) and not leases.others_alive(service_dir):
                    if self._stop(svc):
                        stopped.append(svc.name)
                    leases.mark_auto(service_dir, False)
        return stopped

    def up(
        self, names: Sequence[str] = (), raise_errors: bool = True, pin: bool = False
    ) -> list[UpResult]:
        """Start what is not running, wait until everything named is ready.

        ``pin`` (the CLI's ``up``) also keeps test sessions from stopping these services later.
        """
        results: dict[str, UpResult] = {}
        with self._lock():
            if pin:
                for svc in self.services(names):
                    leases.mark_auto(self.paths.service_dir(svc.name), False)
            to_start, to_wait = [], []
            for svc in self.services(names):
                try:
                    action = self._plan(svc)
                except StackError as err:
                    results[svc.name] = UpResult(svc.name, False, False, 0.0, err)
                    continue
                if action == "start":
                    to_start.append(svc)
                elif action == "wait":
                    to_wait.append(svc)
                else:
                    results[svc.name] = UpResult(svc.name, True, False, 0.0)
            pending: dict[str, tuple[Service, float]] = {}
            for svc in to_start:
                try:
                    pending[svc.name] = (svc, self._start(svc))
                except StackError as err:
                    self._stop(svc, quiet=True)
                    results[svc.name] = UpResult(svc.name, False, True, 0.0, err)
            now = time.monotonic()
            pending.update({svc.name: (svc, now) for svc in to_wait})
            for name, (svc, took, error) in self._wait_ready(pending).items():
                if error:
                    self._stop(svc, quiet=True)
                results[name] = UpResult(name, error is None, True, took, error)
        ordered = [results[s.name] for s in self.services(names)]
        failed = [r for r in ordered if r.error]
        if failed and raise_errors:
            first = failed[0].error
            assert first is not None
            if len(failed) == 1:
                raise first
            text = "; ".join(f"{r.name}: {r.error.message}" for r in failed if r.error)
            raise StackError(first.code, text, first.log_tail)
        return ordered

    def _plan(self, svc: Service) -> str:
        """``skip`` (already up), ``wait`` (ours, still starting) or ``start``."""
        state = self._status(svc)
        if state.state == "running":
            pids = ", ".join(str(p.pid) for p in state.processes)
            self.report(f"stack: {svc.name} already running (pid {pids})\n")
            return "skip"
        if state.state == "external":
            self.report(f"stack: {svc.name} already {state.detail}; using it\n")
            return "skip"
        if state.state == "starting":
            return "wait"
        self._stop(svc, quiet=True)  # a crashed half or stale PID files
        for port in svc.ports:
            if port_busy(port.number):
                raise StackError(
                    "PORT_BUSY",
                    f"{svc.name} needs port {port.number} ({port.role}) on {HOST}, but another "
                    f"program holds it and does not answer as {svc.name}; stop that program "
                    f"(e.g. `ss -ltnp 'sport = :{port.number}'` shows it)",
                )
        return "start"

    def _start(self, svc: Service) -> float:
        java = find_java()
        home = ensure_fetched(svc.artifact, self.paths.dist, self.report)
        run_dir = self.paths.service_dir(svc.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        launches = svc.prepare(Runtime(java=java, home=home, run_dir=run_dir))
        ports = ", ".join(f"{p.number} {p.role}" for p in svc.ports)
        self.report(
            f"stack: starting {svc.name} {svc.artifact.version} on {HOST} ({ports}; "
            f"heap {svc.heap}; logs in {run_dir})\n"
        )
        began = time.monotonic()
        for launch in launches:
            spawn(launch, self._log(svc, launch.name), self._pid_file(svc, launch.name))
        return began

    def _wait_ready(
        self, pending: dict[str, tuple[Service, float]]
    ) -> dict[str, tuple[Service, float, StackError | None]]:
        """Poll every starting service in turn until each is ready, has exited or timed out.

        Returns, per service, the seconds from its start to its outcome and the error if any.
        """
        done: dict[str, tuple[Service, float, StackError | None]] = {}
        reasons = {name: "no answer yet" for name in pending}
        ticker = (
            Ticker(self.report, f"stack: waiting for {', '.join(pending)} ") if pending else None
        )
        last_dot = time.monotonic()
        while len(done) < len(pending):
            finished_before = len(done)
            for name, (svc, began) in pending.items():
                if name in done:
                    continue
                error = self._check(svc, began, reasons)
                if error is not False:
                    took = time.monotonic() - began
                    done[name] = (svc, took, error)
                    outcome = f"ready in {took:.1f} s" if not error else f"failed: {error.code}"
                    assert ticker is not None
                    ticker.note(f"stack: {name} {outcome}")
            if len(done) > finished_before:
                last_dot = time.monotonic()
            elif time.monotonic() - last_dot >= 2:
                assert ticker is not None
                ticker.tick()
                last_dot = time.monotonic()
            if len(done) < len(pending):
                time.sleep(0.5)
        if ticker is not None:
            ticker.close()
        return done

    def _check(
        self, svc: Service, began: float, reasons: dict[str, str]
    ) -> StackError | Literal[False] | None:
        """None when ready, False while still starting, a StackError when it failed."""
        for process, record in zip(svc.processes, self._records(svc), strict=True):
            if record is None or not record.alive():
                log = self._log(svc, process)
                message = f"{svc.name} ({process}) exited while starting; log: {log}"
                return StackError("START_FAILED", message, tail(log))
        try:
            svc.probe()
            return None
        except NotReady as err:
            reasons[svc.name] = str(err)
        if time.monotonic() - began > self.timeout_s:
            log = self._log(svc, svc.processes[0])
            message = (
                f"{svc.name} not ready after {self.timeout_s:.0f} s "
                f"({reasons[svc.name]}); log: {log}"
            )
            return StackError("NOT_READY", message, tail(log))
        return False

    # -- down -----------------------------------------------------------------------------

    def down(self, names: Sequence[str] = (), purge: bool = False) -> list[str]:
        """Stop the named services (all by default) by their PIDs; return those stopped."""
        stopped = []
        with self._lock():
            for svc in reversed(self.services(names)):
                if self._stop(svc):
                    stopped.append(svc.name)
                if purge:
                    shutil.rmtree(self.paths.service_dir(svc.name), ignore_errors=True)
                    self.report(f"stack: removed {self.paths.service_dir(svc.name)}\n")
        return stopped

    def _stop(self, svc: Service, quiet: bool = False) -> bool:
        """Stop every recorded process of ``svc`` (last started first); True if any ran."""
        any_alive = False
        left = []
        for process in reversed(svc.processes):
            pid_file = self._pid_file(svc, process)
            record = read_pid(pid_file)
            if record is None:
                pid_file.unlink(missing_ok=True)
                continue
            if record.alive():
                any_alive = True
                if not quiet:
                    self.report(f"stack: stopping {svc.name} {process} (pid {record.pid}) ")
                began = time.monotonic()
                if stop(record, svc.stop_grace_s):
                    if not quiet:
                        self.report(f"stopped in {time.monotonic() - began:.1f} s\n")
                else:
                    left.append(f"{process} (pid {record.pid})")
                    continue
            else:
                stop(record, 1.0)  # no leader, but maybe orphans it forked
            pid_file.unlink(missing_ok=True)
        if left:
            raise StackError("STOP_FAILED", f"{svc.name}: could not stop {', '.join(left)}")
        if not any_alive and not quiet:
            self.report(f"stack: {svc.name} is not running (no live PID)\n")
        return any_alive

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per stack directory (CLI and test sessions overlap);
        re-entrant within this object."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.paths.run.mkdir(parents=True, exist_ok=True)
        with (self.paths.run / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)


def _probe(svc: Service) -> tuple[bool, str]:
    try:
        svc.probe()
        return True, "ready"
    except NotReady as err:
        return False, str(err)
