"""The breaker's counting: the rolling window against a plain model and the closed state's
quick success path on a manual clock (it must open exactly when the full check would), and
a failfast call counted in one frame exactly as through the general path."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Any

import rpc
from rpc.cluster import MockInvoker
from rpc.degrade import CLOSED, OPEN, WHILE_CLOSED, BreakerRules, CircuitBreaker, RollingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_counts_what_a_plain_list_of_its_slices_counts():
    rng = random.Random(7)
    clock = Clock()
    window = RollingWindow(10.0, 5, clock)  # slices of 2 s
    width = 2.0
    seen: deque[tuple[int, bool, bool]] = deque()  # (slice, failed, slow) of every call
    for step in range(3000):
        clock.now += rng.choice((0.0, 0.01, 0.3, 1.9, 2.0, 7.5, 25.0))
        if step % 500 == 499:
            window.reset()
            seen.clear()
        failed, slow = rng.random() < 0.3, rng.random() < 0.2
        window.add(failed, slow, clock.now if rng.random() < 0.5 else None)
        now_slice = int(clock.now / width)
        seen.append((now_slice, failed, slow))
        live = [c for c in seen if c[0] > now_slice - 5]
        assert (window.calls, window.failures, window.slow) == (
            len(live),
            sum(c[1] for c in live),
            sum(c[2] for c in live),
        ), step
        assert window.edge == (now_slice + 1) * width
    clock.now += 9.9  # no call: refresh() slides it all the same
    window.refresh()
    assert window.calls == len([c for c in seen if c[0] > int(clock.now / width) - 5])


def breaker(clock: Clock, **rules: Any) -> CircuitBreaker:
    return CircuitBreaker(BreakerRules.parse(rules), clock)


def closed_call(b: CircuitBreaker, clock: Clock, failed: bool, seconds: float = 0.0) -> str | None:
    """One call admitted while closed, as the cluster's terminal counts it."""
    if failed:
        return b.record(WHILE_CLOSED, True, seconds, clock.now)
    return b.passed(seconds, clock.now)


def test_a_success_opens_it_when_min_calls_is_reached_as_the_full_check_would():
    clock = Clock()
    b = breaker(clock, min_calls=4, error_ratio=0.5, window=10, buckets=10)
    for failed in (True, True, False):
        assert closed_call(b, clock, failed) is None  # 2 of 3, fewer than min_calls
    assert closed_call(b, clock, False) == OPEN and b.state == OPEN  # 2 of 4: a success trips


def test_a_success_opens_it_when_old_successes_leave_the_window():
    clock = Clock()
    b = breaker(clock, min_calls=4, error_ratio=0.5, window=10, buckets=10)
    for _ in range(6):
        assert closed_call(b, clock, False) is None
    clock.now += 6
    for _ in range(3):
        assert closed_call(b, clock, True) is None  # 3 of 9
    assert b.state == CLOSED
    clock.now += 5  # the six successes slid out: 3 failures of 3 calls (with the next: 4)
    assert closed_call(b, clock, False) == OPEN


def test_new_rules_apply_to_the_window_at_the_next_success():
    clock = Clock()
    b = breaker(clock, min_calls=2, error_ratio=0.9)
    for failed in (True, False, True, False):
        assert closed_call(b, clock, failed) is None  # 2 of 4 < 0.9
    b.rules = BreakerRules.parse({"min_calls": 2, "error_ratio": 0.4})
    assert closed_call(b, clock, False) == OPEN  # 2 of 5 >= 0.4


def test_slow_successes_are_counted_only_with_a_slow_call_rule():
    clock = Clock()
    plain = breaker(clock, min_calls=2, error_ratio=0.5)
    assert not plain.timed
    assert [closed_call(plain, clock, False, 5.0) for _ in range(3)] == [None] * 3
    assert plain.snapshot()["slow"] == 0
    slow = breaker(clock, min_calls=4, error_ratio=None, slow_ratio=0.5, slow_call=0.1)
    assert slow.timed
    for seconds in (0.05, 0.2, 0.05):
        assert closed_call(slow, clock, False, seconds) is None
    assert closed_call(slow, clock, False, 0.2) == OPEN  # 2 slow of 4


def test_the_quick_path_and_the_full_record_agree_on_random_outcomes():
    rng = random.Random(11)
    for trial in range(40):
        rules = {"min_calls": rng.randint(1, 8), "window": 4, "buckets": 4, "error_ratio": 0.5}
        if trial % 3 == 0:
            rules["error_count"] = rng.randint(2, 5)
        clocks = Clock(), Clock()
        quick, full = breaker(clocks[0], **rules), breaker(clocks[1], **rules)
        for _ in range(60):
            step, failed = rng.choice((0.0, 0.2, 1.0, 3.0)), rng.random() < 0.35
            for clock in clocks:
                clock.now += step
            if quick.state is not CLOSED:
                assert full.state is quick.state
                break
            got = closed_call(quick, clocks[0], failed)
            assert got == full.record(WHILE_CLOSED, failed, 0.0, clocks[1].now), (trial, rules)


async def passthrough(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
    return await call_next(inv)


async def governed_run(interceptors: list[Any]) -> tuple[list[str], dict[str, int], list[Any]]:
    """Failfast calls under a cap and a breaker; with no interceptor the call runs in one
    frame (rpc.cluster._direct), with one through the general path: the same outcomes."""
    gate = asyncio.Event()
    failing = {"on": False}

    async def answer(inv: rpc.Invocation) -> object:
        if inv.args[0] == "hang":
            await gate.wait()
        if failing["on"]:
            raise rpc.BusyError("down")
        return inv.args[0]

    client = rpc.AsyncClient(
        ["10.0.0.1:1"], invoker=MockInvoker(answer), injvm=False, interceptors=interceptors
    )
    rules = {"min_calls": 4, "error_ratio": 0.5, "open_for": 60}
    client.configure("t.Svc", max_inflight=2, breaker=rules)
    echo = client.proxy("t.Svc").echo
    outcomes: list[str] = []

    async def call(arg: str) -> None:
        try:
            outcomes.append(str(await echo(arg)))
        except rpc.RpcError as err:
            outcomes.append(err.code)

    for _ in range(3):
        await call("ok")
    hung = [asyncio.ensure_future(call("hang")) for _ in range(2)]
    while client.cluster.inflight("t.Svc") < 2:
        await asyncio.sleep(0.001)
    await call("ok")  # over the cap
    gate.set()
    await asyncio.gather(*hung)
    failing["on"] = True
    for _ in range(6):  # the 5th failure makes 5 of 10: open; the 6th call is refused
        await call("ok")
    counters = {d: n for (s, d), n in client.cluster.counters.items() if s == "t.Svc"}
    states = [row["state"] for row in client.cluster.breakers.snapshot()]
    assert client.cluster.inflight("t.Svc") == 0
    await client.close()
    return outcomes, counters, states


async def test_one_frame_calls_count_as_the_general_path_does():
    direct = await governed_run([])
    general = await governed_run([passthrough])
    assert direct == general
    outcomes, counters, states = direct
    assert outcomes[:6] == ["ok"] * 3 + ["RESOURCE_EXHAUSTED", "hang", "hang"]
    assert outcomes[6:] == ["BUSY"] * 5 + ["UNAVAILABLE"]  # 5 of 10 failed: open, refused
    assert counters == {"flow.rejected": 1, "breaker.open": 1, "breaker.degraded": 1}
    assert states == [OPEN]
