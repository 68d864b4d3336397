"""The weight function on its own: pure, no Spark, no registry."""

from __future__ import annotations

import math

import pytest

from pipeline import NEUTRAL, InstanceHealth, PipelineError, WeightPolicy, compute_weights

A, B, C = "10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"


def healthy(instance: str, latency_ms: float = 5.0, calls: int = 1000, errors: int = 0):
    return InstanceHealth(instance, calls, errors, latency_ms)


def run(windows: list[list[InstanceHealth]], current: dict[str, int] | None = None):
    """Feed windows one after another, as the streaming job does; the weights after each."""
    current = dict(current or {})
    history = []
    for health in windows:
        decisions = compute_weights(health, current)
        current = {d.instance: d.weight for d in decisions}
        history.append(current)
    return history


def share(weights: dict[str, int], instance: str) -> float:
    return weights[instance] / sum(weights.values())


def test_equal_siblings_keep_the_neutral_weight() -> None:
    decisions = compute_weights([healthy(A), healthy(B), healthy(C, 5.9, errors=5)], {})
    assert [(d.weight, d.changed) for d in decisions] == [(NEUTRAL, False)] * 3


def test_a_provider_200ms_slower_loses_over_70_percent_of_its_share_in_two_windows() -> None:
    slow = [healthy(A), healthy(B), healthy(C, 205.0)]
    before = {A: NEUTRAL, B: NEUTRAL, C: NEUTRAL}
    after = run([slow, slow], before)[-1]
    assert share(after, C) <= 0.3 * share(before, C)
    assert after[A] == after[B] == NEUTRAL


def test_a_recovered_provider_climbs_back_more_slowly_than_it_fell() -> None:
    slow = [healthy(A), healthy(B), healthy(C, 205.0)]
    well = [healthy(A), healthy(B), healthy(C)]
    history = run([slow] * 4 + [well] * 6)
    fell = [h[C] for h in history[:4]]
    rose = [h[C] for h in history[4:]]
    assert fell == sorted(fell, reverse=True) and rose == sorted(rose)
    assert rose[0] - fell[-1] < NEUTRAL - fell[0]  # the first step up is smaller than down
    assert rose[-1] == NEUTRAL


@pytest.mark.parametrize("deadband", [0, 5])
def test_the_floor_keeps_a_trickle_for_probing(deadband: int) -> None:
    policy = WeightPolicy(floor=7, deadband=deadband)
    hopeless = [healthy(A), healthy(B), healthy(C, 60_000.0, errors=900)]
    current: dict[str, int] = {}
    for _ in range(10):
        decisions = compute_weights(hopeless, current, policy)
        current = {d.instance: d.weight for d in decisions}
    assert 7 <= current[C] < 7 + max(deadband, 1)  # the deadband may stop it short


def test_errors_weigh_against_the_sibling_median() -> None:
    decisions = compute_weights([healthy(A), healthy(B), healthy(C, errors=200)], {})
    by = {d.instance: d for d in decisions}
    assert by[C].weight < 50 and "success 80.0%" in by[C].reason
    assert by[A].weight == NEUTRAL


def test_thin_data_changes_nothing() -> None:
    current = {A: 60, B: 100, C: 30}
    few = [healthy(A, calls=5), healthy(B, calls=1000), healthy(C, 900.0, calls=3)]
    decisions = compute_weights(few, current)
    assert all(not d.changed for d in decisions)
    assert all("thin data" in d.reason for d in decisions)
    # With two judged siblings, the thin one alone keeps its weight.
    decisions = compute_weights([*few, healthy("10.0.0.4:7001", 400.0)], current)
    assert {d.instance: d.weight for d in decisions}[C] == 30


def test_small_differences_stay_within_the_deadband() -> None:
    # 6.7 ms against an allowed 6.0 (median 5 + 20%): target 89.6, a step of 0.8 * 0.4.
    decisions = compute_weights([healthy(A), healthy(B), healthy(C, 6.7)], {C: 90})
    by = {d.instance: d for d in decisions}
    assert not by[C].changed and by[C].weight == 90
    # Further off, the step is made.
    decisions = compute_weights([healthy(A), healthy(B), healthy(C, 12.0)], {C: 90})
    assert {d.instance: d.weight for d in decisions}[C] < 90


def test_the_function_is_pure() -> None:
    current = {A: 50}
    health = [healthy(A, 50.0), healthy(B), healthy(C)]
    first = compute_weights(health, current)
    assert compute_weights(health, current) == first and current == {A: 50}


@pytest.mark.parametrize(
    "bad",
    [
        lambda: InstanceHealth(A, 10, 11, 5.0),
        lambda: InstanceHealth(A, -1, 0, 5.0),
        lambda: InstanceHealth(A, 10, 0, math.nan),
        lambda: InstanceHealth(A, 10, 0, math.inf),
        lambda: WeightPolicy(alpha_down=0),
        lambda: WeightPolicy(floor=101),
        lambda: WeightPolicy(probe_calls=0),
        lambda: WeightPolicy(min_calls=10, probe_calls=11),
        lambda: WeightPolicy(latency_exponent=math.nan),
        lambda: WeightPolicy(latency_slack_ms=-1.0),
    ],
)
def test_numbers_are_checked_at_the_edge(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PipelineError) as caught:
        bad()
    assert caught.value.code == "BAD_OPTION"


def test_a_demoted_instance_is_judged_on_the_floor_s_trickle() -> None:
    # At the floor a provider gets a few calls a window, under min_calls: enough to probe.
    trickle = [healthy(A), healthy(B), healthy(C, calls=6)]
    by = {d.instance: d for d in compute_weights(trickle, {C: 10})}
    assert by[C].weight > 10 and by[C].changed
    still_slow = [healthy(A), healthy(B), healthy(C, 205.0, calls=6)]
    assert {d.instance: d.weight for d in compute_weights(still_slow, {C: 10})}[C] == 10
    # An instance at 100 with as few calls is thin data, as before; fewer than the probe too.
    assert not {d.instance: d for d in compute_weights(still_slow, {})}[C].changed
    too_few = [healthy(A), healthy(B), healthy(C, calls=4)]
    assert not {d.instance: d for d in compute_weights(too_few, {C: 10})}[C].changed


def test_a_millisecond_of_jitter_at_tiny_latencies_is_no_difference() -> None:
    # 2.9 ms against siblings at 2 ms: beyond 20% but within the 1 ms slack.
    decisions = compute_weights([healthy(A, 2.0), healthy(B, 2.0), healthy(C, 2.9)], {})
    assert all(not d.changed for d in decisions)
    strict = WeightPolicy(latency_slack_ms=0.0)
    assert {d.instance: d.weight for d in compute_weights(
        [healthy(A, 2.0), healthy(B, 2.0), healthy(C, 2.9)], {}, strict)}[C] < 100  # fmt: skip
