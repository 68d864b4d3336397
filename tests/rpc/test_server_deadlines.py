"""Every admitted request ends exactly once: answered (TIMEOUT if its deadline passed) and
its in-flight slot freed, even when the deadline fires before the handler starts."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

import rpc
from rpc._frame import ONEWAY, REQUEST, pack_frame

from .live import LOOPS, Napper, RawPeer, live_server

MP = rpc.get_codec("msgpack")


def request(rid: int, timeout_ms: float, method: str = "echo", arg: Any = 1) -> bytes:
    header = MP.encode({"s": "demo.Echo", "m": method, "t": timeout_ms})
    return pack_frame(REQUEST, 0, MP.id, rid, header, MP.encode([[arg]]))


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_two_pipelined_requests_with_a_zero_timeout_are_both_answered(loop_name: str) -> None:
    """The issue's reproduction: only id 1 used to be answered, and id 2 kept its slot."""
    with live_server(loop_name, Napper()) as (runner, server):
        peer = RawPeer(server.port)
        try:
            peer.send(request(1, 0) + request(2, 0))
            answers = peer.answers(2)
        finally:
            peer.close()
        assert set(answers) == {1, 2}
        for answer in answers.values():
            assert answer in ({"ok": 1}, {"code": "TIMEOUT"} | answer), answer
        assert runner.until(lambda: server.inflight == 0), server.inflight


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_a_pipelined_burst_of_expiring_requests_frees_every_slot(loop_name: str) -> None:
    rng = random.Random(10)
    with live_server(loop_name, Napper(), max_inflight=1_000) as (runner, server):
        peer = RawPeer(server.port)
        try:
            frames = []
            for rid in range(1, 601):
                method = rng.choice(["echo", "nap", "nap_sync"])
                arg = 1 if method == "echo" else rng.uniform(0, 0.005)
                frames.append(request(rid, rng.uniform(0, 3), method, arg))
            oneways = [  # oneway calls that expire must free their slot too
                pack_frame(
                    ONEWAY,
                    0,
                    MP.id,
                    0,
                    MP.encode({"s": "demo.Echo", "m": "nap", "t": 0}),
                    MP.encode([[0.001]]),
                )
                for _ in range(100)
            ]
            peer.send(b"".join(frames + oneways))
            answers = peer.answers(600)
            assert set(answers) == set(range(1, 601))
            codes = {a.get("code", "OK") for a in answers.values()}
            assert codes <= {"OK", "TIMEOUT"}, codes
            assert runner.until(lambda: server.inflight == 0), server.inflight
            assert server.expired >= sum(a.get("code") == "TIMEOUT" for a in answers.values())
            # The server still serves: its slots were all given back.
            assert peer.call(MP, {"s": "demo.Echo", "m": "echo"}, ["after"], 999) == {"ok": "after"}
        finally:
            peer.close()


@pytest.mark.parametrize("loop_name", list(LOOPS))
def test_async_client_bursts_with_millisecond_timeouts_leave_nothing_in_flight(
    loop_name: str,
) -> None:
    rng = random.Random(7)

    async def bursts(address: str) -> None:
        client = rpc.AsyncClient([address], injvm=False)
        try:
            for burst in (100, 300, 500, 300, 100, 500):
                calls = [
                    client.generic(
                        "demo.Echo",
                        rng.choice(["echo", "nap"]),
                        rng.uniform(0, 0.004),
                        timeout=rng.uniform(0.003, 0.010),
                    )
                    for _ in range(burst)
                ]
                for outcome in await asyncio.gather(*calls, return_exceptions=True):
                    assert not isinstance(outcome, BaseException) or (
                        isinstance(outcome, rpc.RpcError) and outcome.code == "TIMEOUT"
                    ), outcome
        finally:
            await client.close()

    with live_server(loop_name, Napper(), max_inflight=5_000) as (runner, server):
        rpc.run(bursts(server.address))  # the client on a loop of its own, as in production
        assert runner.until(lambda: server.inflight == 0), server.inflight
        started = time.monotonic()
        runner.run(server.stop(grace=10.0))  # nothing left to drain: no waiting out the grace
        assert time.monotonic() - started < 2.0
