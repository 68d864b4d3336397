"""The closed loop, end to end with real processes (issue 13's test): three providers
behind a consumer, the pipeline's streaming job over real Kafka in 5 s windows, weights
fed back through the registry. One provider slowed by 200 ms loses at least 70% of its
share within two windows; once it recovers, its share comes back. Nobody acts between.

The consumer balances by weighted round robin, which has no latency sense of its own: if
the weights did not come back from the pipeline, the slow provider would keep its third
and :func:`run_closed_loop` would fail (``LoopFailed``) instead of returning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callscope.demo.loop import RECOVERED_RATIO, SHIFT_RATIO, run_closed_loop


@pytest.mark.kafka
@pytest.mark.timeout(900)  # bounded inside: Spark's start (300 s at most), then ~1.5 min
def test_a_slowed_provider_loses_its_share_within_two_windows_and_wins_it_back(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = run_closed_loop(kafka_bootstrap, tmp_path, window_s=5, qps=50, delay_ms=200,
                             report=print)  # fmt: skip
    summary = result.as_dict()
    assert 0.25 <= result.share_before <= 0.42, summary  # round robin: a third
    assert result.windows_to_shift is not None and result.windows_to_shift <= 2, summary
    assert result.share_shifted is not None, summary
    assert result.share_shifted <= SHIFT_RATIO * result.share_before, summary
    assert result.share_recovered is not None, summary
    assert result.share_recovered >= RECOVERED_RATIO * result.share_before, summary
    # what moved the traffic: the pipeline's documents, down and back up
    slow = [doc["weights"].get(result.slow_address, 100) for doc in result.weights]
    assert min(slow) <= 30 and slow[-1] > min(slow), summary
    # and the same job's edges were readable within a few windows of their first span
    assert result.freshness_s is not None and 0 < result.freshness_s < 60, summary
