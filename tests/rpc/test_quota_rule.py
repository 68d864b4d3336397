"""Quota rules, the lease ledger's arithmetic and the local bucket: no network, no sleeps
beyond a few hundred milliseconds."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

import rpc
from callscope import cli
from rpc.flow import QuotaLimiter, QuotaRule, _quota_bucket, quota_key
from rpc.flow._lease_ledger import live_holders, release, renew, share
from rpc.flow._quota_bucket import QuotaBucket
from rpc.registry import MemoryRegistry, ServiceInstance, connect

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"qps": NAN}, "qps"),
        ({"qps": INF}, "qps"),
        ({"qps": -1}, "qps"),
        ({"qps": "100"}, "qps"),
        ({"qps": True}, "qps"),
        ({"methods": {"get": -INF}}, "methods.get"),
        ({"methods": {"get": "5"}}, "methods.get"),
        ({"methods": ["get"]}, "methods"),
        ({"methods": {"*": 5}}, "methods"),
        ({"qps": 10, "period_s": 0}, "period_s"),
        ({"qps": 10, "period_s": NAN}, "period_s"),
        ({"qps": 10, "period_s": "1s"}, "period_s"),
        ({"qps": 10, "burst_s": -0.5}, "burst_s"),
        ({"qps": 10, "rate": 5}, "rate"),
        ({}, "qps or methods"),
        ([10], "map"),
    ],
)
def test_a_bad_rule_is_refused_before_writing_naming_the_field(value: Any, field: str) -> None:
    registry = MemoryRegistry()
    with pytest.raises(rpc.BadRequestError) as caught:
        registry.put_config(quota_key("orders.Svc"), value)
    assert caught.value.code == "BAD_REQUEST"
    assert field in caught.value.message and "governance/orders.Svc/quota" in caught.value.message
    assert registry.get_config(quota_key("orders.Svc")) is None


def test_a_good_rule_is_written_versioned_and_parsed() -> None:
    registry = MemoryRegistry()
    doc = registry.put_config(quota_key("s"), {"qps": 300, "methods": {"get": 50}}, expected=0)
    assert doc.version == 1
    rule = QuotaRule.parse(doc.value)
    assert rule.limits() == {"*": 300.0, "get": 50.0}
    assert (rule.period_s, rule.burst_s) == (1.0, 0.1)
    with pytest.raises(rpc.RpcError) as lost:  # compare-and-set: a stale writer loses
        registry.put_config(quota_key("s"), {"qps": 10}, expected=0)
    assert lost.value.code == "CONFLICT"


def test_shares_follow_demand_under_contention_and_spread_the_surplus_otherwise() -> None:
    assert share(300, 200, [(100, 100.0)]) == pytest.approx(200)  # free caps it at 200
    assert share(300, 200, [(400, 0.0)]) == pytest.approx(100)  # 300 * 200 / 600
    assert share(300, 50, [(50, 0.0), (50, 0.0)]) == pytest.approx(100)  # 50 + 150 / 3
    assert share(300, None, [(100, 0.0), (100, 0.0)]) == pytest.approx(100)  # no history: 300/3
    assert share(300, 500, [(100, 300.0)]) == 0.0  # nothing free until the other shrinks
    # alone in the ledger, but the registry lists two more: a third, not the whole pool
    renewal = renew(None, "a:1", {"*": 300.0}, {"*": None}, 0.0, 2.0, members={"b:1", "c:1"})
    assert renewal.grants["*"] == pytest.approx(100) and renewal.joined


def test_sequential_renewals_never_overcommit_and_converge_to_demand() -> None:
    rng = random.Random(7)
    cap, now, ledger = 1000.0, 1_000.0, None
    demands = {f"10.0.0.{i}:7000": rng.uniform(0, 900) for i in range(5)}
    for _ in range(40):
        for me in rng.sample(sorted(demands), len(demands)):
            ledger, _, holders, *_ = renew(ledger, me, {"*": cap}, {"*": demands[me]}, now, 2.0)
            total = sum(s["*"][1] for _, s in live_holders(ledger, now).values())
            assert total <= cap + 1e-6
        now += 1.0
    assert holders == 5
    grants = {name: s["*"][1] for name, (_, s) in live_holders(ledger, now).items()}
    assert sum(grants.values()) == pytest.approx(cap, rel=0.01)
    want = sum(demands.values())
    for name, grant in grants.items():
        assert grant == pytest.approx(cap * demands[name] / want, rel=0.05)


def test_expired_departed_and_malformed_holders_are_dropped() -> None:
    value = {
        "holders": {
            "a:1": {"until": 110.0, "limits": {"*": [10, 50.0]}},
            "b:1": {"until": 90.0, "limits": {"*": [10, 50.0]}},  # expired
            "c:1": {"until": 110.0, "limits": {"*": [10, 50.0]}},  # departed
            "d:1": {"until": "soon", "limits": {}},
            "e:1": ["junk"],
        }
    }
    assert set(live_holders(value, 100.0, departed={"c:1"})) == {"a:1"}
    renewal = renew(value, "me:1", {"*": 100.0}, {"*": 10.0}, 100.0, 2.0, {"c:1"})
    assert renewal.holders == 2 and renewal.grants["*"] == pytest.approx(50.0)
    assert renewal.joined and renewal.short["*"] == 0.0
    assert renewal.freed["*"] == pytest.approx(100.0)  # b (expired) and c (departed) dropped
    value["holders"]["a:1"]["limits"]["*"] = [10, 90.0]  # a holds more than its share
    renewal = renew(value, "me:1", {"*": 100.0}, {"*": 10.0}, 100.0, 2.0, {"c:1"})
    assert renewal.grants["*"] == pytest.approx(10.0) and renewal.short["*"] == pytest.approx(40)
    assert release(value, "a:1", 100.0) == {"holders": {"c:1": value["holders"]["c:1"]}}
    assert release(value, "zz:1", 100.0) is None


def test_the_bucket_spends_its_lease_then_falls_back_on_its_own(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(_quota_bucket, "_now", lambda: clock[0])
    bucket = QuotaBucket(0.0, burst_s=0.05)
    assert not bucket.take()
    bucket.lease(1000.0, 100.15, fallback=100.0)
    admitted = 0
    for _ in range(3000):  # 3000 calls offered over 0.3 s
        clock[0] += 0.0001
        admitted += bucket.take()
    # 0.15 s at 1000/s, then 0.15 s at 100/s: 150 + 15, within a burst
    assert 160 <= admitted <= 170, admitted
    assert bucket.arrivals == 3001 and bucket.refused == 3001 - admitted
    assert bucket.current_rate(clock[0]) == 100.0


def test_the_gate_refuses_with_resource_exhausted_and_gives_back_the_service_token() -> None:
    registry = MemoryRegistry()
    registry.put_config(quota_key("s"), {"qps": 1000, "methods": {"slow": 0}, "burst_s": 0.01})
    limiter = QuotaLimiter(registry).start("127.0.0.1:7000", ["s"])
    try:
        eventually(lambda: limiter.snapshot()["s"]["state"] == "leased")
        limiter.admit("s", "fast", None)
        limiter.admit("other.Svc", "anything", None)  # no rule: not limited
        with pytest.raises(rpc.ResourceExhaustedError, match="quota of s/slow used up") as err:
            limiter.admit("s", "slow", None)
        assert err.value.code == "RESOURCE_EXHAUSTED" and not err.value.retriable
        limits = limiter.snapshot()["s"]["limits"]
        assert limits["slow"]["refused"] == 1 and limits["*"]["refused"] == 0
        assert limits["*"]["granted"] == pytest.approx(1000)
    finally:
        limiter.close()
    ledger = registry.get_config("leases/s/quota")
    assert ledger is not None and ledger.value == {"holders": {}}  # handed back


def test_a_rule_written_later_or_changed_is_applied_live_and_removing_it_lifts_the_limit() -> None:
    registry = MemoryRegistry()
    limiter = QuotaLimiter(registry).start("127.0.0.1:7000", ["s"])
    try:
        for _ in range(50):
            limiter.admit("s", "m", None)  # no rule yet: unlimited
        registry.put_config(quota_key("s"), {"qps": 10, "burst_s": 0.1})
        eventually(lambda: limiter.snapshot()["s"]["limits"].get("*", {}).get("granted") == 10)
        with pytest.raises(rpc.ResourceExhaustedError):
            for _ in range(3):
                limiter.admit("s", "m", None)
        registry.put_config(quota_key("s"), {"qps": 1e6}, expected=1)
        eventually(lambda: limiter.snapshot()["s"]["limits"]["*"]["granted"] == 1e6)
        registry.delete_config(quota_key("s"))
        eventually(lambda: limiter.snapshot()["s"]["state"] == "unlimited")
        for _ in range(500):
            limiter.admit("s", "m", None)
    finally:
        limiter.close()


def test_a_crashed_holders_slice_is_taken_back_when_its_lease_lapses() -> None:
    registry = MemoryRegistry()
    registry.put_config(quota_key("s"), {"qps": 300, "period_s": 2.0})  # renewals 2 s apart
    lapses = time.time() + 0.8  # a holder that will never renew nor hand its slice back
    ghost = {"until": lapses, "limits": {"*": [1000.0, 200.0]}}
    registry.put_config("leases/s/quota", {"holders": {"10.9.9.9:1": ghost}})
    limiter = QuotaLimiter(registry).start("127.0.0.1:7000", ["s"])
    try:
        eventually(lambda: limiter.snapshot()["s"]["state"] == "leased")
        assert granted_now(limiter) <= 100.0 + 1e-6  # never more than the pool has free
        eventually(lambda: granted_now(limiter) >= 299)
        assert time.time() - lapses < 0.15  # renewed as the ghost's lease lapsed
    finally:
        limiter.close()


def granted_now(limiter: QuotaLimiter) -> float:
    return float(limiter.snapshot()["s"]["limits"]["*"]["granted"] or 0.0)


def test_callscope_quota_prints_the_rule_and_every_instances_slice(capsys) -> None:
    url = "memory://quota-cli"
    registry = connect(url)
    registry.put_config(quota_key("q.Svc"), {"qps": 100, "methods": {"get": 10}})
    limiters = [QuotaLimiter(registry).start(f"127.0.0.1:{7000 + i}", ["q.Svc"]) for i in (1, 2)]
    try:
        eventually(lambda: all(lim.snapshot()["q.Svc"]["state"] == "leased" for lim in limiters))
        assert cli.main(["quota", "q.Svc", "--registry", url]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["rule"] == {"version": 1, "qps": 100, "methods": {"get": 10}}
        assert sorted(shown["holders"]) == ["127.0.0.1:7001", "127.0.0.1:7002"]
        assert shown["granted"]["*"]["cap"] == 100 and shown["granted"]["*"]["leased"] <= 100
        assert 0 < shown["holders"]["127.0.0.1:7001"]["lapses_in_s"] <= 2.0
        assert cli.main(["quota", "q.Svc", "--registry", url]) == 0
        bad = '{"qps": -5}'
        assert cli.main(["config", "put", quota_key("q.Svc"), bad, "--registry", url]) == 1
        assert "qps must be a finite number" in capsys.readouterr().err
    finally:
        for limiter in limiters:
            limiter.close()
        registry.close()


def eventually(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


class ReadOnly(MemoryRegistry):
    """A registry this provider may read but not write (a grant of ``config: read``)."""

    def put_config(self, key: str, value: Any, expected: int | None = None) -> Any:
        if key.startswith("leases/"):
            raise rpc.PermissionDeniedError(f"'provider' may not write 'config/{key}'")
        return super().put_config(key, value, expected)


def test_a_provider_that_may_not_lease_spends_the_equal_share_of_the_registered() -> None:
    registry = ReadOnly()
    registry.put_config(quota_key("s"), {"qps": 300})
    for port in (7001, 7002, 7003):
        registry.register(ServiceInstance("s", f"127.0.0.1:{port}"))
    limiter = QuotaLimiter(registry).start("127.0.0.1:7001", ["s"])
    try:
        eventually(lambda: limiter.snapshot()["s"]["state"] == "local-share")
        eventually(lambda: limiter.snapshot()["s"]["limits"]["*"]["rate"] == 100.0)
        shot = limiter.snapshot()["s"]
        assert "PERMISSION_DENIED" in shot["last_error"]
        assert "cannot lease" in shot["history"][-1]["note"]  # and logged
    finally:
        limiter.close()


def test_a_limiter_for_no_service_admits_everything_and_closes() -> None:
    limiter = QuotaLimiter(MemoryRegistry()).start("127.0.0.1:7000", [])
    limiter.admit("any.Svc", "m", None)
    assert limiter.snapshot() == {}
    limiter.close()
    assert limiter._client is not None and not limiter._client._thread.is_alive()
