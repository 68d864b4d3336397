"""The breaker-overhead benchmark still runs end to end (a short run: plumbing, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_breaker_overhead_prints_its_ratio_last() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/breaker_overhead.py", "--calls", "300", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    *progress, last = done.stdout.strip().splitlines()
    summary = json.loads(last)
    assert progress and summary["ratio_cpu_breaker_vs_plain"] > 0
    assert summary["us_per_call_breaker"] > 0 and summary["us_per_call_plain"] > 0
