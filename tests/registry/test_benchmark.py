"""The registry benchmark still runs end to end (a few samples: plumbing, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.zookeeper
def test_registry_notify_prints_a_json_summary_last(zookeeper_hosts):
    done = subprocess.run(
        [sys.executable, "benchmarks/registry_notify.py", "--samples", "5", "--instances", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**__import__("os").environ, "CALLSCOPE_ZOOKEEPER": zookeeper_hosts},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("notify_p99_ms_embedded", "notify_p99_ms_zookeeper"):
        assert 0 < summary[key] < 1000
    assert summary["register_20_s_embedded"] > 0 and summary["register_20_s_zookeeper"] > 0
