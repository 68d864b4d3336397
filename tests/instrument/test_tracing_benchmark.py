"""benchmarks/tracing_overhead.py still runs end to end against a real Kafka, so it cannot
rot; and in its short run nothing is lost: both sides export every span they make."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.instrument.conftest import ROOT, native_turned_off

pytestmark = pytest.mark.kafka


def test_tracing_overhead_prints_its_summary_and_loses_nothing(kafka_bootstrap: str) -> None:
    # A short window: this checks the plumbing (processes, Kafka, counters), not the speed.
    done = subprocess.run(
        [sys.executable, "benchmarks/tracing_overhead.py", "--seconds", "0.5", "--rounds", "1",
         "--spans", "500", "--kafka", kafka_bootstrap],
        cwd=ROOT, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["benchmark"] == "tracing_overhead"
    assert summary["qps_untraced"] > 0 and summary["qps_traced"] > 0
    assert summary["ratio_qps_traced_vs_untraced"] > 0
    assert summary["span_cost_ratio_vs_otel_sdk"] > 0
    assert summary["hot_path"] == (["python"] if native_turned_off() else ["c"])
    assert summary["spans_dropped"] == 0
    exported = summary["client_spans_exported_to_kafka"]
    assert exported > 0 and summary["server_spans_exported_to_kafka"] == exported
