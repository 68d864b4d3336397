"""The cluster layer against real provider processes over loopback: a provider SIGKILLed
under load, a timeout that must not be retried, a full outage held by the retry budget."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rpc

from .provider_process import SERVICE

ROOT = Path(__file__).resolve().parents[2]


class Provider:
    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.rpc.provider_process", name, str(delay)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        assert self.address, f"provider {name} did not start"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def providers() -> Iterator[Any]:
    started: list[Provider] = []

    def start(name: str, delay: float = 0.0) -> Provider:
        provider = Provider(name, delay)
        started.append(provider)
        return provider

    yield start
    for provider in started:
        provider.kill()


async def test_a_provider_killed_under_load_fails_no_idempotent_call(providers):
    a, b = providers("a"), providers("b")
    client = rpc.AsyncClient([a.address, b.address], timeout=5.0, injvm=False)
    client.configure(SERVICE, cluster="failover")
    client.configure(SERVICE, "get", idempotent=True)
    store = client.proxy(SERVICE)
    answers: list[str] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            try:
                answers.append(await store.get("k"))
            except rpc.RpcError as err:
                errors.append(err)

    workers = [asyncio.create_task(worker()) for _ in range(32)]
    await asyncio.sleep(0.5)
    before = len(answers)
    a.kill()
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*workers)
    await client.close()
    assert errors == []
    assert before > 0 and len(answers) > before and answers[-1] == "b"
    assert {"a", "b"} <= set(answers)
    assert client.cluster.counters[(SERVICE, "retry")] >= 1  # calls on a moved to b


async def test_a_call_that_timed_out_is_retried_only_when_idempotent(providers):
    slow, fast = providers("slow", delay=2.0), providers("fast")
    client = rpc.AsyncClient([slow.address, fast.address], timeout=5.0, injvm=False)
    client.configure(SERVICE, cluster="failover", attempt_timeout=0.3)
    client.configure(SERVICE, "get", idempotent=True)
    store = client.proxy(SERVICE)
    outcomes = []
    for _ in range(2):  # round robin: one of the two starts on the slow provider
        try:
            outcomes.append(await store.put("k"))
        except rpc.TimeoutError:
            outcomes.append("TIMEOUT")
    assert sorted(outcomes) == ["TIMEOUT", "fast"]
    puts = [await client.generic(SERVICE, "count", "put") for _ in range(2)]  # one each
    assert sorted(puts) == [1, 1]  # the timed-out put was not sent again
    assert [await store.get("k") for _ in range(2)] == ["fast", "fast"]
    await client.close()


def closed_ports(n: int) -> list[str]:
    addresses = []
    for _ in range(n):
        with contextlib.closing(socket.socket()) as sock:
            sock.bind(("127.0.0.1", 0))
            addresses.append(f"127.0.0.1:{sock.getsockname()[1]}")
    return addresses


async def test_the_retry_budget_caps_attempts_under_a_full_outage():
    attempts = []

    async def count(inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        attempts.append(inv.attempt)
        return await call_next(inv)

    client = rpc.AsyncClient(
        closed_ports(3),
        injvm=False,
        interceptors=[count],
        governance={"cluster": "failover", "retries": 2, "retry_budget": 10},
    )
    for _ in range(40):
        with pytest.raises(rpc.UnavailableError):
            await client.generic(SERVICE, "get", "k")
    await client.close()
    assert attempts.count(1) == 40
    assert len(attempts) - 40 <= 5  # 10 tokens, no retries at or below half


def consumer_process(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.rpc.failcache_consumer", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_failcache_requests_survive_a_consumer_restart(providers, tmp_path):
    path = str(tmp_path / "failcache.db")
    (address,) = closed_ports(1)
    assert consumer_process(path, address, "enqueue") == "3"  # provider down: all kept
    provider = providers("back")  # the provider returns (on another port: no matter)
    assert consumer_process(path, provider.address, "deliver") == "3"
    client = rpc.AsyncClient([provider.address], injvm=False)
    assert await client.generic(SERVICE, "count", "put") == 3
    await client.close()
