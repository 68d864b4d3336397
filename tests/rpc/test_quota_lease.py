"""Leased quotas live: real Servers on loopback, each with its own registry client and lease,
against the embedded registry in its own process (and ZooKeeper); bounded in time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import rpc
from rpc.flow import QuotaLimiter, quota_key
from rpc.registry import MemoryRegistry, connect, publish
from tests.registry.conftest import EmbeddedBackend, ZooKeeperBackend, wait_for

from .conftest import Echo

CAP = 300.0


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedBackend]:
    backend = EmbeddedBackend(tmp_path)
    yield backend
    backend.stop()


def granted(limiter: QuotaLimiter, scope: str = "*") -> float:
    limits = limiter.snapshot()["test.Echo"]["limits"]
    return limits[scope]["granted"] or 0.0 if scope in limits else 0.0


class Offered:
    """What :func:`offer` saw: admitted calls' times, refusals, and the worst lag of its
    clock (a late tick sends its calls in a burst, which a bucket of 0.1 s refuses)."""

    def __init__(self) -> None:
        self.admitted: list[float] = []
        self.refused = 0
        self.worst_lag = 0.0


async def offer(proxy: Any, rate: float, seconds: float, seen: Offered) -> None:
    """Call ``proxy.echo`` ``rate`` times a second for ``seconds``; successes' times go to
    ``seen.admitted``, refusals (RESOURCE_EXHAUSTED; anything else fails) to its count."""
    loop = asyncio.get_running_loop()
    admitted = seen.admitted
    refused = 0

    async def one() -> None:
        nonlocal refused
        try:
            await proxy.echo(1)
            admitted.append(time.monotonic())
        except rpc.ResourceExhaustedError:
            refused += 1

    tasks, owed, start = [], 0.0, loop.time()
    tick = start
    while loop.time() - start < seconds:
        owed += rate * 0.01
        while owed >= 1:
            owed -= 1
            tasks.append(asyncio.ensure_future(one()))
        tick += 0.01
        seen.worst_lag = max(seen.worst_lag, loop.time() - tick)
        await asyncio.sleep(max(0.0, tick - loop.time()))
    await asyncio.gather(*tasks)
    seen.refused += refused


async def steady_rate(
    proxies: list[Any], rates: tuple[float, ...], seconds: float, warmup: float
) -> tuple[float, Offered]:
    """The cluster's admitted rate after ``warmup`` while ``proxies`` are offered ``rates``.

    The offering client shares this process with three servers: on a loaded box its clock
    may stall, and a stalled tick's burst is refused by design (``burst_s`` 0.1). Such a
    run is measured again, up to three times; a limiter that admits the wrong rate fails
    every one (over the cap it fails at once: a stall cannot add admissions).
    """
    for _ in range(3):
        seen = Offered()
        start = time.monotonic()
        await asyncio.gather(
            *(offer(p, r, seconds, seen) for p, r in zip(proxies, rates, strict=True))
        )
        rate = rate_between(seen.admitted, start + warmup, start + seconds)
        if rate > 1.1 * CAP or rate >= 0.9 * CAP or seen.worst_lag < 0.1:
            break
    return rate, seen


def rate_between(times: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in times) / (end - start)


async def test_three_instances_keep_the_cluster_rate_and_rebalance_when_one_stops(
    embedded: EmbeddedBackend, make_client: Any
) -> None:
    period = 0.5
    admin = connect(embedded.url())
    admin.put_config(quota_key("test.Echo"), {"qps": CAP, "period_s": period})
    registries, limiters, publications, proxies = [], [], [], []
    try:
        for _ in range(3):
            registry = connect(embedded.url())
            limiter = QuotaLimiter(registry)
            server = rpc.Server("127.0.0.1", 0, gates=[limiter], injvm=False)
            server.export(Echo())
            await server.start()
            publications.append(await publish(server, registry))
            limiter.start(server.address, ["test.Echo"])
            registries.append(registry)
            limiters.append(limiter)
            proxies.append(make_client([server.address]).proxy("test.Echo", timeout=5))
        await asyncio.to_thread(
            wait_for, lambda: sum(granted(lim) for lim in limiters) > 0.9 * CAP, 10
        )
        # 3 x 200 calls/s offered against a cluster-wide 300/s, unevenly to start with.
        cluster, seen = await steady_rate(proxies, (300, 200, 100), 4.0, warmup=1.0)
        assert abs(cluster - CAP) <= 0.1 * CAP, (
            cluster, seen.worst_lag, [lim.snapshot() for lim in limiters]
        )  # fmt: skip
        assert seen.refused > 0.3 * 600 * 4  # the excess was refused, not queued
        shares = [granted(lim) for lim in limiters]
        assert shares[0] > shares[1] > shares[2], shares  # in proportion to demand

        # One instance leaves: the other two take its slice within one period.
        await publications[0].stop(grace=1.0, settle=0.0)
        left = time.monotonic()
        await asyncio.to_thread(limiters[0].close)
        took = await asyncio.to_thread(
            wait_for, lambda: granted(limiters[1]) + granted(limiters[2]) > 0.9 * CAP, 5
        )
        took = time.monotonic() - left
        assert took < period, (took, limiters[1].snapshot())
        after, seen = await steady_rate(proxies[1:], (300, 300), 2.0, warmup=0.5)
        assert abs(after - CAP) <= 0.1 * CAP, (after, seen.worst_lag)
    finally:
        for publication in publications[1:]:
            await publication.stop(grace=1.0, settle=0.0)
        for limiter in limiters:
            await asyncio.to_thread(limiter.close)
        for registry in [*registries, admin]:
            registry.close()


async def test_an_attached_limiter_refuses_the_excess_over_sockets_and_counts_it(
    make_server: Any, make_client: Any
) -> None:
    registry = MemoryRegistry()
    registry.put_config(quota_key("test.Echo"), {"methods": {"echo": 5}, "burst_s": 0.2})
    server = await make_server(Echo())
    limiter = QuotaLimiter(registry).attach(server)
    try:
        assert limiter in server.gates
        await asyncio.to_thread(wait_for, lambda: granted(limiter, "echo") == 5, 5)
        echo = make_client([server.address]).proxy("test.Echo", timeout=5)
        outcomes = await asyncio.gather(*(echo.echo(1) for _ in range(20)), return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, rpc.ResourceExhaustedError)]
        assert len(refused) >= 15 and len(refused) + outcomes.count(1) == 20, outcomes
        assert await echo.add(1, 2) == 3  # another method: not capped
        counts = rpc.cluster.DECISIONS.take([("test.Echo", server.address, "echo")])
        tally = counts[("test.Echo", server.address, "echo")]
        assert tally["quota.rejected"] == tally["flow.rejected"] == len(refused)
    finally:
        await asyncio.to_thread(limiter.close)


async def test_published_providers_follow_a_quota_written_later_and_hand_it_back(
    make_server: Any, make_client: Any
) -> None:
    registry = MemoryRegistry()
    server = await make_server(Echo())
    publication = await publish(server, registry)
    assert publication.quota is not None and publication.quota in server.gates
    echo = make_client([server.address]).proxy("test.Echo", timeout=5)
    assert await asyncio.gather(*(echo.echo(1) for _ in range(20))) == [1] * 20  # no rule yet
    registry.put_config(quota_key("test.Echo"), {"qps": 2, "burst_s": 0.1})
    await asyncio.to_thread(wait_for, lambda: granted(publication.quota) == 2, 5)
    outcomes = await asyncio.gather(*(echo.echo(1) for _ in range(20)), return_exceptions=True)
    assert sum(isinstance(o, rpc.ResourceExhaustedError) for o in outcomes) >= 18
    await publication.stop(grace=1.0, settle=0.0)
    ledger = registry.get_config("leases/test.Echo/quota")
    assert ledger is not None and ledger.value == {"holders": {}}


class Driver:
    """Calls ``limiter.admit`` ``rate`` times a second in a thread; admitted times kept."""

    def __init__(self, limiter: QuotaLimiter, rate: float) -> None:
        self.limiter, self.rate = limiter, rate
        self.admitted: list[float] = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        start, sent = time.monotonic(), 0
        while not self.stopped:
            while sent < (time.monotonic() - start) * self.rate:
                sent += 1
                try:
                    self.limiter.admit("test.Echo", "echo", None)
                    self.admitted.append(time.monotonic())
                except rpc.ResourceExhaustedError:
                    pass
            time.sleep(0.005)

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(5)


@contextmanager
def two_driven(url: str, period: float, rates: tuple[float, float]) -> Iterator[Any]:
    """A rule of CAP per second, two limiters (each its own registry client) driven at
    ``rates``; everything closed after."""
    admin = connect(url)
    admin.put_config(quota_key("test.Echo"), {"qps": CAP, "period_s": period})
    registries = [connect(url) for _ in range(2)]
    limiters = [QuotaLimiter(r).start(f"127.0.0.1:{7001 + i}", ["test.Echo"])
                for i, r in enumerate(registries)]  # fmt: skip
    drivers = [Driver(limiter, rate) for limiter, rate in zip(limiters, rates, strict=True)]
    try:
        yield limiters, drivers
    finally:
        for driver in drivers:
            driver.stop()
        for limiter in limiters:
            limiter.close()
        for registry in [*registries, admin]:
            registry.close()


def test_a_registry_outage_keeps_the_last_lease_one_period_then_the_local_share(
    embedded: EmbeddedBackend,
) -> None:
    period = 0.6
    with two_driven(embedded.url() + "&timeout=0.5", period, (400, 100)) as (limiters, drivers):
        # Uneven demand, uneven slices (300 x 4/5 and 1/5): unlike the equal local share.
        wait_for(lambda: granted(limiters[0]) > 200 and 0 < granted(limiters[1]) < 100, 10)
        assert embedded.server is not None
        embedded.server.kill()  # SIGKILL: no renewal succeeds after this line
        killed = time.monotonic()
        snapshot = limiters[0].snapshot()["test.Echo"]
        leased_at = killed - snapshot["lease_age_s"]
        grant = snapshot["limits"]["*"]["granted"]
        samples = []
        while time.monotonic() < leased_at + 2 * period + 1.2:
            shot = limiters[0].snapshot()["test.Echo"]
            samples.append((time.monotonic(), shot["limits"]["*"]["rate"], shot["state"]))
            time.sleep(0.02)
        ends = leased_at + 2 * period  # the lease's period, then one more
        kept = [rate for t, rate, _ in samples if t < ends - 0.05]
        local = [rate for t, rate, _ in samples if t > ends + 0.05]
        assert kept and all(rate == pytest.approx(grant, abs=0.01) for rate in kept), samples
        assert local and all(rate == pytest.approx(CAP / 2, abs=0.01) for rate in local), samples
        assert samples[-1][2] == "local-share"
        fallback = rate_between(drivers[0].admitted, ends + 0.1, ends + 1.1)
        assert abs(fallback - CAP / 2) <= 0.15 * CAP / 2, fallback

        embedded.start()  # back: leases again, in proportion to demand
        wait_for(lambda: all(lim.snapshot()["test.Echo"]["state"] == "leased"
                             for lim in limiters), 10)  # fmt: skip
        wait_for(lambda: granted(limiters[0]) > 200, 5)


@pytest.mark.zookeeper
def test_leases_over_zookeeper_split_by_demand_and_rebalance_on_leave_and_join(
    zookeeper_hosts: str,
) -> None:
    period, url = 0.5, ZooKeeperBackend(zookeeper_hosts).url()
    with two_driven(url, period, (300, 100)) as (limiters, drivers):
        wait_for(lambda: granted(limiters[0]) > 180 and 40 < granted(limiters[1]) < 120, 10)
        assert granted(limiters[0]) + granted(limiters[1]) <= CAP + 1e-6
        drivers[0].stop()
        limiters[0].close()
        left = time.monotonic()
        wait_for(lambda: granted(limiters[1]) > 0.9 * CAP, 5)
        assert time.monotonic() - left < period

        registry = connect(url)  # a newcomer: its equal share within one period
        joiner = QuotaLimiter(registry).start("127.0.0.1:7009", ["test.Echo"])
        driver = Driver(joiner, 300)
        try:  # from its first slice (taken from what is free: nothing) to its share
            wait_for(lambda: joiner.snapshot()["test.Echo"]["state"] == "leased", 5)
            joined = time.monotonic()
            wait_for(lambda: granted(joiner) > 0.9 * CAP / 2, 5)
            assert time.monotonic() - joined < period
            assert granted(joiner) + granted(limiters[1]) <= CAP + 1e-6
        finally:
            driver.stop()
            joiner.close()
            registry.close()
