"""``callscope demo --stack real``: the same shop on Kafka, Elasticsearch and ZooKeeper; the
spans land in Elasticsearch under the run's own prefix (removed at the end) and the
pipeline's streaming job feeds the weights back through ZooKeeper."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from callscope.demo.topology import EXPECTED_EDGES
from tests.test_demo import Demo


def _spans_of(elasticsearch_url: str, prefix: str, service: str) -> int:
    body = json.dumps({"query": {"term": {"service": service}}}).encode()
    request = urllib.request.Request(
        f"{elasticsearch_url}/{prefix}-spans*/_count?allow_no_indices=true",
        data=body, headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(json.loads(answer.read())["count"])


@pytest.mark.kafka
@pytest.mark.elasticsearch
@pytest.mark.zookeeper
@pytest.mark.timeout(900)
def test_the_demo_runs_on_the_real_stack(tmp_path: Path, elasticsearch_url: str) -> None:
    argv = ("--stack", "real", "--duration", "75", "--qps", "10", "--no-dashboard",
            "--slow", "payment#2=200ms@20s")  # fmt: skip
    with Demo(*argv, cwd=tmp_path) as demo:
        store = demo.wait_for("collector ", timeout=600)  # the stack may have to start
        prefix = store.split("?prefix=", 1)[1]
        assert store.startswith("spans: Kafka 127.0.0.1:") and "elasticsearch://" in store
        demo.wait_for("progress ", timeout=600)  # after Spark's start
        stored = _spans_of(elasticsearch_url, prefix, "gateway")  # while it runs
        summary = demo.finish(timeout=600)
    assert stored > 0
    assert summary["stack"] == "real" and summary["calls"] >= 500, summary
    assert summary["spans_stored"] >= 5 * summary["calls"], summary
    assert summary["missing_edges"] == [], summary
    assert {tuple(e.split("->")) for e in summary["edges"]} >= EXPECTED_EDGES
    # the streaming job closed windows and lowered the slowed instance's weight
    assert summary["weight_job"].startswith("streaming: callscope pipeline stream"), summary
    assert summary["pipeline_windows"] >= 2 and summary["weight_changes"] >= 1, summary
    assert summary["weights"]["payment"][summary["slow_address"]] < 100, summary
    assert summary["slow_share_after"] < summary["slow_share_before"], summary
    assert _spans_of(elasticsearch_url, prefix, "gateway") == 0  # the run's indices are gone
