"""Slow senders lose their connection, and partial frames share one byte budget
(issue 10, defect 3): a frame announced big and trickled in used to stay forever."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest

import rpc
from rpc._frame import FIXED_HEADER, MAGIC, REQUEST, VERSION

from .live import RawPeer, live_server, one_call

MP = rpc.get_codec("msgpack")
HEADER = MP.encode({"s": "demo.Echo", "m": "echo"})


@rpc.service("demo.Echo")
class Echo:
    async def echo(self, value: Any) -> Any:
        return value


def announce(body_size: int) -> bytes:
    """The start of a request frame whose body is ``body_size`` bytes: the rest is owed."""
    return FIXED_HEADER.pack(MAGIC, VERSION, REQUEST, 0, MP.id, 1, len(HEADER), body_size) + HEADER


def trickle(peer: RawPeer, every: float, until: float) -> bool:
    """Send one byte every ``every`` s; True once the server has closed the connection."""
    end = time.monotonic() + until
    while time.monotonic() < end:
        if not peer.send(b"\x00"):
            return True
        peer.sock.settimeout(every)
        try:
            if peer.sock.recv(1) == b"":
                return True
        except TimeoutError:
            pass
        except ConnectionResetError:
            return True
    return False


def test_slowloris_with_the_default_limits_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """16 MiB announced, one byte per 100 ms: under 16 KiB/s after the 2 s grace."""
    caplog.set_level(logging.WARNING, logger="callscope.rpc")
    with live_server("asyncio", Echo()) as (runner, server):
        peer = RawPeer(server.port)
        try:
            peer.send(announce(16 * 1024 * 1024 - 100))
            started = time.monotonic()
            assert trickle(peer, 0.1, until=8.0), "a slowloris kept its connection"
            assert time.monotonic() - started < 6.0
        finally:
            peer.close()
        assert runner.until(lambda: server.arrivals.held == 0 and not server._connections)
    assert any("bytes/s" in r.getMessage() for r in caplog.records)


def test_a_frame_must_arrive_within_the_frame_timeout(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="callscope.rpc")
    limits = rpc.Limits(frame_timeout=1.0, frame_min_rate=1, frame_rate_grace=0.2)
    with live_server("asyncio", Echo(), limits=limits) as (_runner, server):
        peer = RawPeer(server.port)
        try:
            peer.send(announce(1_000_000))
            started = time.monotonic()
            assert trickle(peer, 0.05, until=5.0)  # 20 B/s: above this minimum rate
            assert 0.9 < time.monotonic() - started < 3.0
            # Another client's whole frames are not affected.
            assert one_call(server.port, {"s": "demo.Echo", "m": "echo"}, [1]) == {"ok": 1}
        finally:
            peer.close()
    assert any("took over 1s" in r.getMessage() for r in caplog.records)


def test_partial_frames_share_one_budget(caplog: pytest.LogCaptureFixture) -> None:
    """Eight connections each hold 900 KiB of a 1 MiB frame: the budget (4 MiB) keeps
    at most four, the others are closed; whole frames keep being served."""
    caplog.set_level(logging.WARNING, logger="callscope.rpc")
    limits = rpc.Limits(max_frame_size=1024 * 1024, max_buffered=4 * 1024 * 1024)
    chunk = announce(1024 * 1024 - 100) + b"\x00" * (900 * 1024)
    with live_server("asyncio", Echo(), limits=limits) as (runner, server):
        peers = [RawPeer(server.port, timeout=3) for _ in range(8)]
        try:
            for peer in peers:
                peer.send(chunk)
            assert runner.until(lambda: server.arrivals.held >= 3 * 900 * 1024)
            closed = sum(peer.closed_by_server() for peer in peers)
            assert 4 <= closed <= 5, closed
            assert server.arrivals.held <= limits.max_buffered
            assert one_call(server.port, {"s": "demo.Echo", "m": "echo"}, [2]) == {"ok": 2}
        finally:
            for peer in peers:
                peer.close()
        assert runner.until(lambda: server.arrivals.held == 0)
    assert any("frames not yet decoded" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "field", ["frame_timeout", "frame_min_rate", "frame_rate_grace", "max_depth", "max_buffered"]
)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1, 0, True, "1"])
def test_limits_refuse_nonsense(field: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=field):
        rpc.Limits(**{field: bad})


def test_limits_need_room_for_one_frame() -> None:
    with pytest.raises(ValueError, match="max_buffered"):
        rpc.Limits(max_frame_size=8 * 1024 * 1024, max_buffered=4 * 1024 * 1024)
    assert rpc.Limits(frame_timeout=1, frame_min_rate=0.5).frame_min_rate == 0.5
