"""Long-running commands log one summary line per interval: alive, busy or idle, at a glance."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from callscope._summary import IntervalSummary


def test_each_line_reports_the_growth_since_the_previous_one(caplog) -> None:
    totals = {"n": 0}

    def read() -> dict[str, float]:
        totals["n"] += 5
        return dict(totals)

    log = logging.getLogger("test.summary")
    with caplog.at_level(logging.INFO, logger="test.summary"):
        summary = IntervalSummary(
            log, 0.1, read, lambda d, t, s: f"+{d['n']:.0f} of {t['n']:.0f}"
        ).start()
        deadline = time.monotonic() + 10
        while len(caplog.records) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        summary.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:3] == ["+5 of 5", "+5 of 10", "+5 of 15"]


def test_a_failing_read_is_a_warning_not_a_crash(caplog) -> None:
    def read() -> dict[str, float]:
        raise ConnectionError("store away")

    with caplog.at_level(logging.INFO, logger="test.summary"):
        summary = IntervalSummary(logging.getLogger("test.summary"), 0.1, read, str).start()
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
        summary.stop()
    assert "summary unavailable: store away" in caplog.records[0].getMessage()


def _wait_for(process: subprocess.Popen[str], needle: str, timeout_s: float = 60) -> list[str]:
    """Lines of ``process``'s stderr up to the first containing ``needle``."""
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no {needle!r} in:\n" + "".join(seen))


def _callscope(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "callscope", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_the_registry_logs_calls_and_holdings(tmp_path: Path) -> None:
    from rpc.registry import ServiceInstance, connect

    registry = _callscope("registry", "--db", str(tmp_path / "r.db"), "--port", "0",
                          "--summary-interval", "0.5")  # fmt: skip
    try:
        assert registry.stdout is not None
        address = registry.stdout.readline().split()[-1]
        client = connect(f"callscope://{address}")
        try:
            client.register(ServiceInstance("orders.OrderService", "10.0.0.7:7001"))
            lines = _wait_for(registry, "holds 1 services, 1 instances")
        finally:
            client.close()
    finally:
        registry.terminate()
        registry.communicate(timeout=30)  # and closes the pipes
    summary = next(line for line in lines if "registry: last" in line)
    assert " calls (" in summary and "register" in summary and ", 0 errors;" in summary


def test_the_collector_logs_a_line_even_when_idle(tmp_path: Path) -> None:
    collector = _callscope("collector", "--store", f"sqlite://{tmp_path / 's.db'}",
                           "--spool", str(tmp_path / "spool"), "--http-port", "-1",
                           "--grpc-port", "-1", "--dlq-file", str(tmp_path / "dlq"),
                           "--summary-interval", "0.5")  # fmt: skip
    try:
        lines = _wait_for(collector, "collector: last")
    finally:
        collector.terminate()
        collector.communicate(timeout=30)
    assert "consumed 0, stored 0 spans + 0 KPI samples in 0 batches" in lines[-1]


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "0.01", "soon"])
def test_a_bad_interval_is_refused_with_the_range(bad: str, capsys) -> None:
    from callscope.cli import main

    with pytest.raises(SystemExit):
        main(["collector", "--summary-interval", bad])
    assert "--summary-interval" in capsys.readouterr().err
