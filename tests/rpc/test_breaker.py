"""The circuit breaker: its state machine on a manual clock, then on real servers over loopback
(open providers leave the candidates, exactly the configured probes in half-open, fallbacks)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rpc
from rpc.degrade import CLOSED, DENIED, HALF_OPEN, OPEN, BreakerRules, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(**rules: Any) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return CircuitBreaker(BreakerRules.parse(rules), clock), clock


def run(b: CircuitBreaker, failed: bool, seconds: float = 0.001) -> str | None:
    permit = b.acquire()
    assert permit != DENIED
    return b.record(permit, failed, seconds)


def test_error_ratio_opens_only_after_min_calls_and_the_window_forgets():
    b, clock = breaker(min_calls=4, error_ratio=0.5, window=10, buckets=10)
    for failed in (True, True, True):
        assert run(b, failed) is None  # 3 of 3 failed, but fewer than min_calls
    clock.now += 11  # the window slid past them
    assert [run(b, f) for f in (False, False, True)] == [None, None, None]
    assert run(b, True) == OPEN and b.state == OPEN  # 2 of 4
    assert b.acquire() == DENIED and not b.allows()


def test_error_count_and_slow_ratio_trip():
    b, _ = breaker(error_count=2, error_ratio=None, min_calls=100)
    assert run(b, True) is None and run(b, True) == OPEN
    slow, _ = breaker(slow_ratio=0.5, slow_call=0.1, error_ratio=None, min_calls=2)
    assert run(slow, False, 0.05) is None and run(slow, False, 0.2) == OPEN


def test_half_open_admits_exactly_the_probes_and_closes_when_enough_succeed():
    b, clock = breaker(min_calls=1, open_for=5, probes=3, probes_to_close=2)
    stale = b.acquire()
    run(b, True)
    assert b.state == OPEN
    clock.now += 5
    permits = [b.acquire() for _ in range(5)]
    assert b.state == HALF_OPEN and permits.count(DENIED) == 2
    assert b.record(stale, False, 0) is None  # admitted before it opened: ignored
    assert b.record(permits[0], False, 0) is None
    assert b.record(permits[1], False, 0) == CLOSED
    assert b.record(permits[2], True, 0) is None  # a probe of the closed-over state
    assert b.snapshot()["calls"] == 0 and b.opened == 1


def test_half_open_reopens_once_closing_is_impossible_and_stuck_probes_expire():
    b, clock = breaker(min_calls=1, open_for=5, probes=3, probes_to_close=3)
    run(b, True)
    clock.now += 5
    first, second = b.acquire(), b.acquire()
    assert b.record(first, True, 0) == OPEN and b.opened == 2
    assert b.record(second, False, 0) is None and b.acquire() == DENIED
    clock.now += 5
    taken = [b.acquire() for _ in range(3)]  # probes that never report (lost)
    assert b.acquire() == DENIED
    clock.now += 5
    assert b.allows() and b.acquire() not in [*taken, DENIED]  # new probes


@pytest.mark.parametrize(
    "rules, field",
    [
        ({"error_ratio": float("nan")}, "breaker.error_ratio"),
        ({"open_for": float("inf")}, "breaker.open_for"),
        ({"min_calls": -1}, "breaker.min_calls"),
        ({"error_ratio": 1.5}, "breaker.error_ratio"),
        ({"probes": 2, "probes_to_close": 3}, "breaker.probes_to_close"),
        ({"errors": ["NOPE"]}, "breaker.errors"),
        ({"fallback": {"action": "throw", "code": "NOPE"}}, "breaker.fallback.code"),
        ({"fallback": {"action": "value", "value": float("inf")}}, "breaker.fallback.value"),
        ({"surprise": 1}, "unknown key 'surprise'"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(rules, field):
    with pytest.raises(rpc.BadRequestError, match=field.replace(".", r"\.")):
        rpc.AsyncClient(governance={"breaker": rules})


# -- on real servers ----------------------------------------------------------
@rpc.service("t.Flaky")
class Flaky:
    """Answers its name, or BUSY while ``failing``, after ``delay`` seconds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        self.delay = 0.0
        self.calls = 0

    async def get(self) -> str:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            raise rpc.BusyError(f"{self.name} is failing")
        return self.name


@rpc.extension("mocks", "t.Flaky")
class FlakyMock:
    def get(self) -> str:
        return "from the mock"


class Spy:
    """A client interceptor keeping each attempt's peer and events (what tracing records)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[str]]] = []

    async def __call__(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        try:
            return await call_next(inv)
        finally:
            self.seen.append((inv.peer, [name for name, _ in inv.events or ()]))

    def events(self) -> list[str]:
        return [event for _, events in self.seen for event in events]


async def test_an_open_provider_leaves_the_candidates_and_failover_picks_others(
    make_server, make_client
):
    bad, good = Flaky("bad"), Flaky("good")
    bad.failing = True
    a, b = await make_server(bad), await make_server(good)
    spy = Spy()
    client = make_client([a.address, b.address], cluster="failover", interceptors=[spy])
    client.configure("t.Flaky", breaker={"min_calls": 3, "error_ratio": 0.5, "open_for": 60})
    flaky = client.proxy("t.Flaky")
    assert {await flaky.get() for _ in range(12)} == {"good"}
    assert bad.calls == 3  # then its circuit opened: never tried again
    assert "breaker.open" in spy.events() and "retry" in spy.events()
    states = {r["provider"]: r for r in rpc.degrade.breaker_states() if r["service"] == "t.Flaky"}
    assert states[a.address]["state"] == OPEN and states[b.address]["state"] == CLOSED


async def test_half_open_admits_exactly_the_probes_then_closes(make_server, make_client):
    flaky = Flaky("one")
    server = await make_server(flaky)
    spy = Spy()
    client = make_client([server.address], interceptors=[spy])
    rules = {"min_calls": 2, "open_for": 0.3, "probes": 2,
             "fallback": {"action": "value", "value": "fallback"}}  # fmt: skip
    client.configure("t.Flaky", "get", breaker=rules)
    proxy = client.proxy("t.Flaky")
    flaky.failing = True
    for _ in range(2):
        with pytest.raises(rpc.BusyError):
            await proxy.get()
    assert await proxy.get() == "fallback" and flaky.calls == 2  # open: no network
    await asyncio.sleep(0.35)
    flaky.failing, flaky.delay = False, 0.2
    answers = await asyncio.gather(*(proxy.get() for _ in range(6)))
    assert sorted(answers) == ["fallback"] * 4 + ["one"] * 2 and flaky.calls == 4
    flaky.delay = 0.0
    assert await proxy.get() == "one" and flaky.calls == 5  # closed
    events = spy.events()
    assert events.count("breaker.half_open") == 1 and events.count("breaker.closed") == 1
    assert events.count("breaker.degraded") == 5
    assert ("degraded", ["breaker.degraded"]) in spy.seen  # the fallback has its own span


async def test_failed_probes_open_it_again(make_server, make_client):
    flaky = Flaky("one")
    server = await make_server(flaky)
    client = make_client([server.address])
    client.configure("t.Flaky", breaker={"min_calls": 1, "open_for": 0.5, "probes": 1})
    proxy = client.proxy("t.Flaky")
    flaky.failing = True
    with pytest.raises(rpc.BusyError):
        await proxy.get()
    await asyncio.sleep(0.55)
    with pytest.raises(rpc.BusyError):
        await proxy.get()  # the one probe, failed
    with pytest.raises(rpc.UnavailableError, match=r"degraded \(circuit open\)"):
        await proxy.get()  # the default fallback: UNAVAILABLE, without a call
    assert flaky.calls == 2


async def test_slow_calls_trip_it_and_a_mock_answers(make_server, make_client):
    flaky = Flaky("slow")
    flaky.delay = 0.1
    server = await make_server(flaky)
    client = make_client([server.address])
    rules = {"slow_ratio": 0.5, "slow_call": 0.05, "error_ratio": None, "min_calls": 3,
             "open_for": 60, "fallback": "mock"}  # fmt: skip
    client.configure("t.Flaky", breaker=rules)
    proxy = client.proxy("t.Flaky")
    assert [await proxy.get() for _ in range(3)] == ["slow"] * 3
    assert await proxy.get() == "from the mock" and flaky.calls == 3


async def test_on_error_falls_back_on_each_counted_failure(make_server, make_client):
    flaky = Flaky("one")
    flaky.failing = True
    server = await make_server(flaky)
    client = make_client([server.address])
    client.configure("t.Flaky", breaker={"error_count": 100, "on_error": True, "fallback": "null"})
    assert await client.proxy("t.Flaky").get() is None and flaky.calls == 1
