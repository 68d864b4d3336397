"""``callscope demo``: the shop's processes under load, traced into SQLite, the dashboard
answering, faults injected; a summary as the last line; Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from callscope.demo.faults import FaultInbox, parse_fault
from callscope.demo.topology import EXPECTED_EDGES, LOADGEN
from storage import TraceQuery, open_analytics_store, open_span_store


class Demo:
    """``callscope demo`` in a child process, its output read line by line as it comes."""

    def __init__(self, *argv: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "callscope", "demo", *argv],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix: str, timeout: float = 180, containing: str = "") -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line.startswith(prefix) and containing in line:
                    return line[len(prefix) :].strip()
            assert self.process.poll() is None, "\n".join(self.lines)
            time.sleep(0.2)
        raise AssertionError(f"no {prefix!r} line in {timeout} s:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 240) -> dict:
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(10)
        output = "\n".join(self.lines)
        assert code == 0, output
        return json.loads(self.lines[-1])

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:  # a failed assertion: stop it as Ctrl-C would
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def _left_running(marker: str) -> list[str]:
    """Processes (ours) whose command line names ``marker``: orphans of the demo."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if marker in cmdline and process.pid != os.getpid():
            found.append(f"{process.pid}: {cmdline}")
    return found


def _a_stored_trace(db: Path) -> str:
    with open_span_store(f"sqlite://{db}", read_only=True) as store:
        (trace,) = store.find_traces(TraceQuery(LOADGEN, limit=1))
    return trace.trace_id


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:
        assert answer.status == 200, url
        return answer.read().decode()


@pytest.mark.timeout(1200)  # Spark's start on a busy 2-core box, then 90 s of load
def test_demo_runs_the_loop_unattended_and_summarizes_it(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    demo = Demo(
        "--duration", "90", "--qps", "10", "--dashboard-port", "0", "--workdir", str(workdir),
        "--slow", "payment#2=200ms@20s", "--crash", "orders#2@50s",
        cwd=tmp_path,
    )  # fmt: skip
    with demo:
        url = demo.wait_for("dashboard ")
        demo.wait_for("progress ", timeout=600)  # Spark is up, the load runs, spans are stored
        # the dashboard answers while the demo runs: its pages, layout and callbacks
        trace_id = _a_stored_trace(workdir / "spans.db")
        for page in ("/", "/compare", "/dependencies", "/services", "/faults", "/alarms",
                     f"/trace/{trace_id}"):  # fmt: skip
            assert "callscope" in _get(url + page)
        demo.wait_for("fault      at ", timeout=120)  # the slowdown, from the command line
        # a failure asked for as the dashboard's Faults page asks (its browser test covers
        # the page): the supervisor applies it and it counts as the others do
        FaultInbox(workdir / "faults").post(parse_fault("fail", "inventory#1=20%"))
        demo.wait_for("fault      at ", timeout=30, containing="(dashboard)")
        assert json.loads(_get(url + "/_dash-layout"))["props"]
        assert json.loads(_get(url + "/_dash-dependencies"))
        summary = demo.finish(timeout=600)

    assert summary["calls"] >= 600, summary  # 10/s for 90 s, minus a slow start
    assert summary["spans_stored"] >= 5 * summary["calls"], summary  # 5 hops, each 2 spans
    assert summary["missing_edges"] == [], summary
    assert {tuple(e.split("->")) for e in summary["edges"]} >= EXPECTED_EDGES
    # injected failures reach the caller as INTERNAL; the crash is failed over
    assert summary["errors"] > 0 and "INTERNAL" in summary["error_codes"], summary
    assert [f["fault"] for f in summary["faults"]] == [  # in the order they were applied
        "payment#2 +200 ms a call", "inventory#1 20% errors", "orders#2 killed",
    ]  # fmt: skip
    # the loop closes: the pipeline's job computes the graph and lowers the slow instance's
    # weight in the registry; the consumers' balancer sends it less and less
    assert summary["weight_job"].startswith("interim: the pipeline's batch job"), summary
    assert summary["pipeline_windows"] >= 3, summary
    pipeline_edges = {tuple(e.split("->")) for e in summary["pipeline_edges"]}
    assert pipeline_edges >= EXPECTED_EDGES, summary
    assert summary["balancer"] == "round_robin"
    assert summary["weight_changes"] >= 1, summary
    slow = summary["slow_address"]
    weights = summary["weights"]["payment"]
    # (100 -> 43 -> 24 -> 11 over three windows here; a slower box may see only the first)
    assert weights[slow] < 100 and weights[slow] == min(weights.values()), summary
    assert summary["slow_instance"] == "payment#2"
    # the demo's alarm rules: the slowed payment service's p99 raised an alarm, stored
    assert summary["alarms"] >= 1, summary
    with open_analytics_store(f"sqlite://{workdir / 'spans.db'}", read_only=True) as analytics:
        raised = analytics.alarms(0, 2**62, service="payment", limit=100).alarms
    assert any(a.rule == "slow-service" and a.state == "firing" for a in raised), raised
    assert summary["payment_calls_before"] > 50 and summary["payment_calls_after"] > 50, summary
    assert 0.2 < summary["slow_share_before"] < 0.5, summary  # round robin: a third
    assert summary["slow_share_after"] < 0.75 * summary["slow_share_before"], summary
    assert summary["dashboard"] == url
    assert _left_running(str(workdir)) == []

    # a --workdir is kept, and the hints it prints work when pasted (venv not on PATH)
    hint = next(line.strip() for line in demo.lines if f"traces --store sqlite://{workdir}" in line)
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(shlex.split(hint), capture_output=True, text=True, timeout=60, env=bare)
    assert shown.returncode == 0 and "gateway.GatewayService/checkout" in shown.stdout, shown
    # the newest trace, printed as a tree, runs through the whole shop
    tree = demo.output.split("newest trace ", 1)[1].split("\n\n", 1)[0]
    hops = [line.split()[:3] for line in tree.splitlines()[1:]]
    assert hops[0] == ["CLIENT", "gateway.GatewayService/checkout", LOADGEN], tree
    served = {service for kind, _, service in hops if kind == "SERVER"}
    assert served == {"gateway", "orders", "inventory", "payment", "ledger"}, tree


def test_ctrl_c_stops_every_process_and_removes_the_temporary_files(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    with Demo("--qps", "5", "--no-dashboard", "--no-feedback", cwd=tmp_path, env=env) as demo:
        demo.wait_for("load ")
        time.sleep(5)
        demo.process.send_signal(signal.SIGINT)
        summary = demo.finish(timeout=120)
    assert "stopping every process" in demo.output
    assert summary["calls"] > 0 and summary["dashboard"] is None
    assert summary["weight_job"] == "off (--no-feedback)" and summary["balancer"] == "p2c"
    assert list(temp.iterdir()) == []
    assert _left_running(str(temp)) == []
