"""feed_back writes the weights document consumers read, and the history of changes."""

from __future__ import annotations

from pathlib import Path

import rpc.registry
from callscope_contract import weights_key
from pipeline import InstanceHealth, feed_back
from rpc.balance import WeightsDocument
from storage import open_analytics_store

A, B, C = "10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"
SLOW = [InstanceHealth(A, 500, 0, 5.0), InstanceHealth(B, 500, 0, 5.0),
        InstanceHealth(C, 500, 0, 205.0)]  # fmt: skip


def test_the_document_is_one_consumers_accept_and_changes_are_stored(tmp_path: Path) -> None:
    registry = rpc.registry.connect("memory://feedback-test")
    analytics = open_analytics_store(f"sqlite://{tmp_path / 'a.db'}")
    try:
        registry.put_config(weights_key("orders"), {"10.0.0.9:7001": 300})  # set by hand
        feed_back(registry, "orders", SLOW, analytics=analytics, now_us=1_000)
        doc = registry.get_config(weights_key("orders"))
        parsed = WeightsDocument.parse(doc.value, doc.version)  # what the balancers run
        assert parsed.factor(C) < 30 and parsed.factor(A) == 100
        assert parsed.factor("10.0.0.9:7001") == 300  # an instance not judged stays as set
        feed_back(registry, "orders", SLOW, analytics=analytics, now_us=2_000)
        second = registry.get_config(weights_key("orders"))
        assert second.version == doc.version + 1
        assert WeightsDocument.parse(second.value).factor(C) < parsed.factor(C)
        changes = analytics.weights("orders", 0, 10_000)
        assert [(c.instance, c.time_us) for c in changes] == [(C, 1_000), (C, 2_000)]
        assert "sibling median 5.0 ms" in changes[0].reason
    finally:
        analytics.close()
        registry.close()


def test_no_change_writes_nothing() -> None:
    registry = rpc.registry.connect("memory://feedback-quiet")
    try:
        even = [InstanceHealth(a, 500, 0, 5.0) for a in (A, B, C)]
        feed_back(registry, "orders", even)
        assert registry.get_config(weights_key("orders")) is None
    finally:
        registry.close()
