"""KPI recorder: windows, histogram quantiles, in-flight across windows, process stats."""

from __future__ import annotations

import pytest

from instrument import LATENCY_BOUNDS_MS, KpiRecorder, ProcessStats, quantile


def test_quantiles_interpolate_within_buckets() -> None:
    bounds = (1.0, 2.0, 5.0)
    assert quantile([0, 0, 0, 0], bounds, 0.5) == 0.0
    assert quantile([10, 0, 0, 0], bounds, 0.5) == pytest.approx(0.5)
    assert quantile([0, 10, 0, 0], bounds, 0.99) == pytest.approx(1.99)
    # the open bucket is capped by the largest value seen
    assert quantile([0, 0, 0, 4], bounds, 0.99, max_ms=9.0) <= 9.0
    assert quantile([50, 50, 0, 0], bounds, 0.95) == pytest.approx(1.9)


def test_windows_reset_counts_but_keep_in_flight() -> None:
    rec = KpiRecorder("app", "h:1")
    slow = rec.begin("S", "p:1", "m", "consumer")
    for ms in (0.3, 0.7, 3.0, 40.0):
        rec.end(rec.begin("S", "p:1", "m", "consumer"), ms / 1000, error=ms > 10)
    (sample,) = rec.collect({"cpu_percent": 12.5, "rss_bytes": 1000})
    assert (sample.count, sample.errors, sample.in_flight) == (4, 1, 1)
    assert sample.latency_ms["buckets"] == {"0.5": 1, "1": 1, "5": 1, "50": 1}
    assert sample.latency_ms["max"] == pytest.approx(40.0)
    assert sample.cpu_percent == 12.5 and sample.rss_bytes == 1000 and sample.app == "app"
    (sample,) = rec.collect()
    assert (sample.count, sample.in_flight) == (0, 1)  # still reported: a call is running
    rec.end(slow, 0.002, error=False)
    (sample,) = rec.collect()
    assert (sample.count, sample.in_flight) == (1, 0)
    assert rec.collect() == []  # idle keys are forgotten


def test_bucket_labels_match_bounds() -> None:
    rec = KpiRecorder("a", "i")
    rec.end(rec.begin("S", "i", "m", "provider"), 100.0, error=False)  # 100 s: the +Inf bucket
    (sample,) = rec.collect()
    assert sample.latency_ms["buckets"] == {"+Inf": 1}
    assert len(LATENCY_BOUNDS_MS) == len(set(LATENCY_BOUNDS_MS))


def test_process_stats_read_psutil_and_gc() -> None:
    stats = ProcessStats()
    reading = stats.read()
    assert reading["rss_bytes"] > 0  # type: ignore[operator]
    sample = stats.sample("app", "h:1", 1, 10.0, {"dropped": 3}, reading)
    assert sample.role == "process" and sample.counters == {"dropped": 3}
    assert sample.gc_collections["gen0"] >= 0
