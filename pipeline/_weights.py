"""Routing weights from one window's per-instance health: a pure, documented function.

For each provider instance of a service, the window's ``calls``, ``errors`` and latency
(``latency_ms``: the p95, say) become a weight factor in percent (the
``governance/<service>/weights`` document's: 100 = the provider's own weight):

1. **Thin data changes nothing.** An instance with fewer than ``min_calls`` calls keeps
   its current weight; when fewer than two instances have enough calls there are no
   siblings to compare with, and no weight changes. A *demoted* instance (below 100) is
   judged on as few as ``probe_calls``: the trickle the floor leaves it is all the data
   it gets, and it must be able to climb back (so small a sample never sets the
   siblings' yardstick).
2. **Target**, against the sibling median (the median over the instances with enough
   calls, so one bad instance cannot move its own yardstick far):
   ``latency factor = min(1, (allowed latency / latency) ** latency_exponent)`` with
   ``allowed latency = median + max(median * latency_tolerance, latency_slack_ms)`` (the
   slack: a millisecond of jitter on a busy machine is no difference at 2 ms),
   ``success factor = min(1, ((success rate + error_tolerance) / median success rate) **
   error_exponent)``, ``target = 100 * latency factor * success factor``. An instance
   within the tolerances of its siblings, or better, gets 100; it is never boosted above
   the others.
3. **Floor.** The target is at least ``floor``, so a slowed instance still receives a
   trickle of calls: when it recovers, the next windows see it, and it climbs back.
   (Choose ``floor`` so that its share of a window's calls reaches ``probe_calls``, or a
   demoted instance stays at the floor for want of data: with three providers, the
   floor's 10 is a twenty-first of the calls, 12 of a 5 s window at 50 calls a second.)
4. **Smoothing**, asymmetric: ``new = current + alpha * (target - current)`` with
   ``alpha_down`` when falling (fast, to protect callers) and ``alpha_up`` when rising
   (slower, so a flapping instance is not flooded on its first good window).
5. **Hysteresis.** A step that ends within ``deadband`` points of the target lands on
   it; a change smaller than ``deadband`` points is not made (unless it reaches 100 or
   the floor), so noise does not rewrite the document every window.

Every decision carries its reason, stored with the change (``storage.WeightChange``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._errors import PipelineError

__all__ = ["NEUTRAL", "InstanceHealth", "WeightDecision", "WeightPolicy", "compute_weights"]

NEUTRAL = 100
"""The factor that leaves a provider's own weight as it is."""


@dataclass(frozen=True, slots=True)
class InstanceHealth:
    """One provider instance over one window, as the pipeline measured it."""

    instance: str
    calls: int
    errors: int
    latency_ms: float

    def __post_init__(self) -> None:
        if type(self.calls) is not int or self.calls < 0:
            raise PipelineError("BAD_OPTION", f"{self.instance}: calls must be an integer >= 0")
        if type(self.errors) is not int or not 0 <= self.errors <= self.calls:
            raise PipelineError("BAD_OPTION", f"{self.instance}: errors must be in 0..calls")
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise PipelineError("BAD_OPTION", f"{self.instance}: latency must be finite, >= 0")

    @property
    def success(self) -> float:
        return 1.0 - self.errors / self.calls if self.calls else 1.0


@dataclass(frozen=True, slots=True)
class WeightPolicy:
    """The knobs of :func:`compute_weights` (module docstring); defaults move a provider
    200 ms slower than two siblings from a third of the calls to a fifteenth within two
    windows (its weight 100 -> 28 -> 14), and to the floor's 10 in the third."""

    min_calls: int = 20
    probe_calls: int = 5
    latency_tolerance: float = 0.2
    latency_slack_ms: float = 1.0
    error_tolerance: float = 0.01
    latency_exponent: float = 1.0
    error_exponent: float = 8.0
    floor: int = 10
    alpha_down: float = 0.8
    alpha_up: float = 0.5
    deadband: int = 5

    def __post_init__(self) -> None:
        numbers = (
            self.latency_exponent, self.error_exponent, self.alpha_down, self.alpha_up,
            self.latency_tolerance, self.error_tolerance, self.latency_slack_ms,
        )  # fmt: skip
        if not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise PipelineError("BAD_OPTION", "weight policy: numbers must be finite and >= 0")
        if not (0 < self.alpha_down <= 1 and 0 < self.alpha_up <= 1):
            raise PipelineError("BAD_OPTION", "weight policy: alphas must be in (0, 1]")
        if not 0 <= self.floor <= NEUTRAL or self.deadband < 0:
            raise PipelineError("BAD_OPTION", "weight policy: floor 0..100, deadband >= 0")
        if not 1 <= self.probe_calls <= self.min_calls:
            raise PipelineError("BAD_OPTION", "weight policy: 1 <= probe_calls <= min_calls")


@dataclass(frozen=True, slots=True)
class WeightDecision:
    """The weight an instance gets now, the one it had, and why."""

    instance: str
    weight: int
    previous: int
    reason: str

    @property
    def changed(self) -> bool:
        return self.weight != self.previous


def compute_weights(
    health: Sequence[InstanceHealth],
    current: Mapping[str, int],
    policy: WeightPolicy = WeightPolicy(),
) -> list[WeightDecision]:
    """One decision per instance in ``health`` (see the module docstring for the rules).

    ``current``: the factors in force (an instance not named has 100).
    """
    judged = [h for h in health if h.calls >= policy.min_calls]
    if len(judged) < 2:
        why = f"thin data: {len(judged)} of {len(health)} instances have {policy.min_calls}+ calls"
        return [_keep(h, current, why) for h in health]
    median_latency = statistics.median(h.latency_ms for h in judged)
    median_success = statistics.median(h.success for h in judged)
    decisions = []
    for h in health:
        previous = current.get(h.instance, NEUTRAL)
        enough = policy.probe_calls if previous < NEUTRAL else policy.min_calls
        if h.calls < enough:
            decisions.append(_keep(h, current, f"thin data: {h.calls} calls < {enough}"))
            continue
        allowed_ms = median_latency + max(
            median_latency * policy.latency_tolerance, policy.latency_slack_ms
        )
        latency = min(1.0, _ratio(allowed_ms, h.latency_ms)) ** policy.latency_exponent
        success = min(1.0, _ratio(h.success + policy.error_tolerance, median_success))
        success **= policy.error_exponent
        target = max(policy.floor, NEUTRAL * latency * success)
        alpha = policy.alpha_down if target < previous else policy.alpha_up
        weight = round(previous + alpha * (target - previous))
        if abs(weight - round(target)) < policy.deadband:  # close enough: arrive
            weight = round(target)
        weight = min(NEUTRAL, max(policy.floor, weight))
        if abs(weight - previous) < policy.deadband and weight not in (NEUTRAL, policy.floor):
            weight = previous
        reason = (
            f"latency {h.latency_ms:.1f} ms vs sibling median {median_latency:.1f} ms, "
            f"success {h.success:.1%} vs {median_success:.1%}: target {target:.0f}"
        )
        if weight == previous and round(target) != previous:
            reason += f", within the {policy.deadband}-point deadband"
        decisions.append(WeightDecision(h.instance, weight, previous, reason))
    return decisions


def _ratio(numerator: float, denominator: float) -> float:
    if denominator <= 0:
        return 1.0 if numerator <= 0 else math.inf
    return numerator / denominator


def _keep(h: InstanceHealth, current: Mapping[str, int], why: str) -> WeightDecision:
    previous = current.get(h.instance, NEUTRAL)
    return WeightDecision(h.instance, previous, previous, why)
