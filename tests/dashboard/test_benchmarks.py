"""The dashboard's benchmarks still run end to end (tiny sizes: plumbing, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_search_benchmark_fills_a_store_and_times_every_search() -> None:
    result = _run("dashboard_search.py", "--spans", "2000", "--rounds", "1")
    assert result["stored_spans"] == 2000
    searches = result["searches"]
    assert len(searches) == 5 and searches["by a rare tag (1 trace)"]["traces"] == 1
    assert all(s["ratio"] > 0 for s in searches.values())


def test_render_benchmark_times_the_waterfall_against_plotly_alone() -> None:
    result = _run("dashboard_render.py", "--spans", "50", "--rounds", "2")
    assert result["spans"] == 50 and result["warm_median_s"] > 0
    assert result["plotly_js_alone_median_s"] > 0 and result["ratio"] > 0
