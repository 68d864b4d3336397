"""Alarm rules on their own: validation, and firing, silence and resolution window by window."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

import rpc.registry
from callscope_contract import KpiSample
from pipeline import (
    ALARMS_KEY,
    AlarmEvaluator,
    AlarmJob,
    AlarmRule,
    Observation,
    PipelineError,
    load_rules,
    observations,
    parse_rules,
    registry_rules,
)
from storage import FIRING, RESOLVED, open_analytics_store

W_S = 10
W_US = W_S * 1_000_000
BASE = 1_764_150_000_000_000


def slow(**kw: Any) -> AlarmRule:
    settings = {"metric": "p99_ms", "op": ">", "threshold": 200.0, **kw}
    return AlarmRule(name="slow", **settings)


def seen(p99: float | None, service: str = "orders", calls: int = 50) -> list[Observation]:
    if p99 is None:
        return []
    return [Observation("service", service, "", calls, 0, W_S, 1.0, 2.0, p99)]


def run(rule: AlarmRule, p99s: list[float | None]) -> list[tuple[int, str]]:
    """(window number, state) of each alarm raised over consecutive windows."""
    evaluator = AlarmEvaluator([rule])
    out = []
    for i, p99 in enumerate(p99s):
        for a in evaluator.evaluate(BASE + i * W_US, W_S, seen(p99)):
            assert a.window_start_us == BASE + i * W_US and a.rule == rule.name
            out.append((i, a.state))
    return out


def test_fires_when_count_of_period_windows_breach_and_resolves_once() -> None:
    rule = slow(period=3, count=2, silence=0)
    # breaches at 1 and 3: two of the three windows 1..3 -> fires at 3
    assert run(rule, [100, 300, 100, 300, 100, 100, 100]) == [(3, FIRING), (4, RESOLVED)]
    # one breach in any three windows: silent throughout
    assert run(rule, [300, 100, 100, 300, 100, 100, 300]) == []


def test_silence_keeps_a_holding_rule_quiet_then_it_fires_again() -> None:
    rule = slow(period=1, count=1, silence=2)
    assert run(rule, [300] * 7) == [(0, FIRING), (3, FIRING), (6, FIRING)]
    # silence defaults to period, as SkyWalking's
    assert run(slow(period=2, count=1), [300] * 6) == [(0, FIRING), (3, FIRING)]
    # resolved in silence, breached again in silence: still quiet until it ends
    assert run(rule, [300, 100, 300, 300, 300]) == [(0, FIRING), (1, RESOLVED), (3, FIRING)]


def test_missing_windows_and_thin_data_do_not_breach() -> None:
    rule = slow(period=2, count=2, silence=0, min_calls=10)
    evaluator = AlarmEvaluator([rule])
    assert evaluator.evaluate(BASE, W_S, seen(300)) == []
    # a window with too few calls does not count, even though it is slow
    assert evaluator.evaluate(BASE + W_US, W_S, seen(300, calls=3)) == []
    fired = evaluator.evaluate(BASE + 2 * W_US, W_S, seen(300))
    assert fired == [] and evaluator.evaluate(BASE + 3 * W_US, W_S, seen(300))[0].state == FIRING
    # a gap of windows with no data at all: the scope stopped breaching -> resolved
    gone = evaluator.evaluate(BASE + 9 * W_US, W_S, seen(None))
    assert [(a.state, a.value) for a in gone] == [(RESOLVED, None)]
    assert evaluator.evaluate(BASE + 10 * W_US, W_S, seen(None)) == []


def test_a_replayed_window_is_not_evaluated_twice() -> None:
    evaluator = AlarmEvaluator([slow(silence=0)])
    assert len(evaluator.evaluate(BASE, W_S, seen(300))) == 1
    assert evaluator.evaluate(BASE, W_S, seen(300)) == []


def test_scopes_include_exclude_and_the_message(caplog: pytest.LogCaptureFixture) -> None:
    rule = AlarmRule("errors", "error_rate", ">=", 10, scope="instance", include=("orders",),
                     message="{name} fails {value}% of calls (limit {threshold}%)")  # fmt: skip
    evaluator = AlarmEvaluator([rule])
    obs = [Observation("instance", "orders", "10.0.0.1:7001", 40, 4, W_S),
           Observation("instance", "orders", "10.0.0.2:7001", 40, 1, W_S),
           Observation("instance", "stock", "10.0.0.3:7001", 40, 40, W_S),
           Observation("service", "orders", "", 80, 5, W_S)]  # fmt: skip
    with caplog.at_level(logging.WARNING, "callscope.pipeline.alarms"):
        (alarm,) = evaluator.evaluate(BASE, W_S, obs)
    assert (alarm.scope, alarm.service, alarm.target, alarm.value) == (
        "instance",
        "orders",
        "10.0.0.1:7001",
        10.0,
    )
    assert alarm.message == "orders @ 10.0.0.1:7001 fails 10% of calls (limit 10%)"
    assert "alarm firing errors" in caplog.text


def test_changed_rules_forget_and_a_restart_resumes_silence() -> None:
    rule = slow(silence=3)
    first = AlarmEvaluator([rule])
    fired = first.evaluate(BASE, W_S, seen(300))
    # a restarted job told what the store holds stays silenced, then resolves
    second = AlarmEvaluator([rule])
    second.resume(fired, W_S)
    assert second.evaluate(BASE + W_US, W_S, seen(300)) == []
    assert [a.state for a in second.evaluate(BASE + 2 * W_US, W_S, seen(100))] == [RESOLVED]
    # a changed threshold starts afresh: the scope fires at once under the new rule
    first.set_rules([slow(silence=3, threshold=250.0)])
    assert [a.state for a in first.evaluate(BASE + W_US, W_S, seen(300))] == [FIRING]


def test_observations_from_stream_instances_and_batch_rollups() -> None:
    def kpi(instance: str, method: str, count: int, errors: int, p99: float) -> KpiSample:
        return KpiSample(service="orders", instance=instance, method=method, role="provider",
                         window_start_us=BASE, window_s=W_S, count=count, errors=errors,
                         latency_ms={"p50": 1.0, "p95": p99 / 2, "p99": p99})  # fmt: skip

    stream = observations([kpi("a:1", "*", 30, 3, 10.0), kpi("b:1", "*", 10, 1, 90.0)])
    by = {(o.scope, o.target): o for o in stream[BASE]}
    service = by[("service", "")]
    assert (service.calls, service.errors, service.p99_ms) == (40, 4, 90.0)
    assert service.value("error_rate") == 10.0 and service.value("qps") == 4.0
    assert by[("instance", "a:1")].value("success_rate") == 90.0
    batch = observations([kpi("", "*", 40, 0, 20.0), kpi("", "orders/create", 40, 0, 20.0)])
    assert {(o.scope, o.target) for o in batch[BASE]} == {
        ("service", ""),
        ("method", "orders/create"),
    }
    assert Observation("service", "x", "", 0, 0, W_S).value("p99_ms") is None


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"metric": "p99_ms", "op": ">", "threshold": math.nan}, "finite"),
        ({"metric": "p99_ms", "op": ">", "threshold": math.inf}, "finite"),
        ({"metric": "p99_ms", "op": ">", "threshold": -1}, ">= 0"),
        ({"metric": "error_rate", "op": ">", "threshold": 101}, "0..100"),
        ({"metric": "latency", "op": ">", "threshold": 1}, "unknown metric"),
        ({"metric": "qps", "op": "!=", "threshold": 1}, "unknown op"),
        ({"metric": "qps", "op": ">", "threshold": 1, "scope": "host"}, "unknown scope"),
        ({"metric": "qps", "op": ">", "threshold": 1, "period": 0}, "period"),
        ({"metric": "qps", "op": ">", "threshold": 1, "period": 2, "count": 3}, "count"),
        ({"metric": "qps", "op": ">", "threshold": 1, "silence": -1}, "silence"),
        ({"metric": "qps", "op": ">", "threshold": "1"}, "a number"),
        ({"metric": "qps", "op": ">", "threshold": True}, "a number"),
        ({"metric": "qps", "op": ">"}, "threshold is required"),
        ({"metric": "qps", "op": ">", "threshold": 1, "silence-period": 2}, "unknown setting"),
        ({"metric": "qps", "op": ">", "threshold": 1, "include": "orders"}, "list"),
    ],
)
def test_bad_rules_are_refused_with_a_stable_code(settings: dict, says: str) -> None:
    with pytest.raises(PipelineError) as caught:
        parse_rules({"rules": {"r": settings}})
    assert caught.value.code == "BAD_ALARM_RULE"
    assert says in caught.value.message and "'r'" in caught.value.message


def test_rules_from_a_file_and_from_the_registry(tmp_path: Path) -> None:
    document = {"rules": {"slow": {"metric": "p99_ms", "op": ">", "threshold": 200,
                                   "period": 3, "count": 2, "include": ["orders"]}}}  # fmt: skip
    path = tmp_path / "alarms.json"
    path.write_text(json.dumps(document))
    (rule,) = load_rules(path)
    assert (rule.period, rule.count, rule.silence_windows, rule.include) == (3, 2, 3, ("orders",))
    path.write_text('{"rules": {"x": {"metric": "qps", "op": ">", "threshold": NaN}}}')
    for bad in (path, tmp_path / "missing.json"):
        with pytest.raises(PipelineError) as caught:
            load_rules(bad)
        assert caught.value.code == "BAD_ALARM_RULE"
    registry = rpc.registry.connect("memory://alarm-rules")
    try:
        assert registry_rules(registry) == []
        registry.put_config(ALARMS_KEY, document)
        assert registry_rules(registry) == [rule]
    finally:
        registry.close()


def test_the_job_keeps_the_last_good_registry_rules_and_resumes_from_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = f"sqlite://{tmp_path / 'a.db'}"
    registry = rpc.registry.connect("memory://alarm-job")
    rules = {"rules": {"slow": {"metric": "p99_ms", "op": ">", "threshold": 200, "silence": 3}}}
    registry.put_config(ALARMS_KEY, rules)

    def window(i: int, p99: float) -> list[KpiSample]:
        return [KpiSample(service="orders", instance="a:1", method="*", role="provider",
                          window_start_us=BASE + i * W_US, window_s=W_S, count=50,
                          latency_ms={"p99": p99})]  # fmt: skip

    try:
        job = AlarmJob(registry=registry)
        assert [a.state for a in job.on_windows(window(0, 300), [store], resume=True)] == [FIRING]
        registry.put_config(ALARMS_KEY, {"rules": {"slow": {"metric": "nope"}}})
        with caplog.at_level(logging.ERROR, "callscope.pipeline.alarms"):
            assert job.on_windows(window(1, 300), [store], resume=True) == []  # silenced
        assert "BAD_ALARM_RULE" in caplog.text and [r.name for r in job.rules()] == ["slow"]
        registry.put_config(ALARMS_KEY, rules)
        # a restarted job reads the stored alarm: still silenced in window 2, then resolves
        again = AlarmJob(registry=registry)
        assert again.on_windows(window(2, 300), [store], resume=True) == []
        assert [a.state for a in again.on_windows(window(3, 90), [store])] == [RESOLVED]
        with open_analytics_store(store) as analytics:
            stored = analytics.alarms(BASE, BASE + 10 * W_US, service="orders").alarms
        assert [(a.state, a.window_start_us) for a in stored] == [
            (RESOLVED, BASE + 3 * W_US), (FIRING, BASE)]  # fmt: skip
    finally:
        registry.close()
    with pytest.raises(PipelineError) as caught:
        AlarmJob([slow(), slow()])
    assert caught.value.code == "BAD_ALARM_RULE"
