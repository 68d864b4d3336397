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


def test_chunks_are_the_same_spans_in_whole_traces_and_json_lines_are_to_json() -> None:
    from .traces import generate, generate_chunks, json_lines

    spans = generate(50, 0, 60_000_000)
    chunks = list(generate_chunks(50, 0, 60_000_000, chunk_spans=40))
    assert [s for chunk in chunks for s in chunk] == spans and len(chunks) > 3
    traces = [{s.trace_id for s in chunk} for chunk in chunks]
    assert sum(map(len, traces)) == len(set().union(*traces))  # no trace in two chunks
    assert json_lines(spans).splitlines() == [s.to_json() for s in spans]
