"""benchmarks/pipeline.py still runs end to end (on the session's Spark), so it cannot rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pipeline.py"


def test_the_benchmark_prints_a_json_summary_last(
    spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location("pipeline_benchmark", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--spans", "600", "--minutes", "2"])  # plumbing, not speed
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["spans"] >= 500 and summary["edges"] > 0
    assert summary["batch_seconds"] > 0 and summary["ratio_batch_to_python"] > 0
    assert summary["freshness_s"] is None and summary["loop_windows_to_shift"] is None  # no --loop
