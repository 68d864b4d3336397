"""The echo benchmark still runs end to end, so it cannot rot between releases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "rpc_echo.py"

REQUIRED = [
    "qps_64",
    "grpc_aio_qps_64",
    "ratio_qps_64",
    "p50_1_ms",
    "grpc_aio_p50_1_ms",
    "ratio_p50_1",
    "qps_1",
    "grpc_aio_qps_1",
    "p99_1_ms",
    "sync_client_qps_1",
    "sync_handler_qps_64",
]


def test_rpc_echo_benchmark_prints_a_json_summary_last() -> None:
    # A short window: this checks the plumbing (servers, clients, JSON), not the speed.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "0.3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 1, "progress lines should come before the JSON"
    summary = json.loads(lines[-1])
    for key in REQUIRED:
        value = summary[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert value > 0, (key, value)
    assert summary["grpc_aio_client_loop"] == "asyncio"


def test_governance_overhead_benchmark_prints_its_ratio_last() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "governance_overhead.py"),
            "--seconds",
            "0.3",
            "--rounds",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["ratio_qps_governed_vs_direct"] > 0
    assert summary["qps_governed"] > 0 and summary["qps_direct"] > 0
    assert "providers used 3" in done.stdout  # the governed client spread over all three


def run_benchmark(script: str, *args: str) -> dict[str, Any]:
    """Run ``benchmarks/SCRIPT`` with ``args``; its last line, the JSON summary."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_flow_overhead_benchmark_prints_its_ratios_last() -> None:
    summary = run_benchmark("flow_overhead.py", "--seconds", "0.3", "--rounds", "1")
    assert summary["ratio_qps_limited_vs_plain"] > 0
    assert summary["qps_limited"] > 0 and summary["qps_plain"] > 0
    assert summary["goodput_1x"] > 0 and summary["ratio_goodput_3x_vs_1x"] > 0


def test_quota_pool_benchmark_beats_a_static_split_and_holds_the_cap() -> None:
    summary = run_benchmark(
        "quota_pool.py", "--processes", "2", "--instances", "3", "--cap", "150",
        "--period", "0.5", "--warmup", "1.5", "--seconds", "2",
    )  # fmt: skip
    # offered 300/s unevenly: a static 25/s each admits 95/s, the pool about its cap
    assert summary["ratio_goodput_leased_vs_static"] > 1.2
    assert summary["leased_per_s"] <= 1.2 * summary["cap"]
    assert summary["states"] == ["leased"]


def test_registry_wakeups_benchmark_shows_named_polls_sleeping_through_others_writes() -> None:
    summary = run_benchmark(
        "registry_wakeups.py", "--watchers", "20", "--writes", "20", "--rate", "100",
        "--rounds", "1",
    )  # fmt: skip
    assert summary["answers_per_write_named"] == 0  # and each heard its own write
    assert summary["answers_per_write_unnamed"] > 10
