"""Arrivals: the byte budget of partial frames and the sweep that drops slow senders."""

from __future__ import annotations

import asyncio

import rpc
from rpc._intake import Arrivals


class FakeConn:
    def __init__(self) -> None:
        self.partial = 0
        self.errors: list[str] = []
        self.reading = True

    def protocol_error(self, reason: str) -> None:
        self.errors.append(reason)

    def may_read(self) -> bool:
        return self.reading


LIMITS = rpc.Limits(
    max_frame_size=1000,
    max_header_size=100,
    max_buffered=2500,
    frame_timeout=10,
    frame_min_rate=100,
    frame_rate_grace=1,
)


def test_the_budget_closes_the_connection_that_grows_past_it() -> None:
    arrivals = Arrivals(LIMITS)
    a, b, c = FakeConn(), FakeConn(), FakeConn()
    arrivals.update(a, 900, True, 0.0)
    arrivals.update(b, 900, True, 0.0)
    arrivals.update(c, 600, True, 0.0)
    assert arrivals.held == 2400 and not (a.errors or b.errors or c.errors)
    arrivals.update(c, 700, False, 0.1)  # 2500: at the limit, still fine
    arrivals.update(c, 701, False, 0.2)
    assert c.errors and "frames not yet decoded" in c.errors[0]
    assert arrivals.held == 1800 and c.partial == 0  # released at once
    arrivals.update(a, 0, True, 0.3)  # a's frame completed
    assert arrivals.held == 900
    arrivals.release(b)
    assert arrivals.held == 0


async def test_the_sweep_judges_rate_and_deadline_but_not_paused_connections() -> None:
    loop = asyncio.get_running_loop()
    arrivals = Arrivals(LIMITS)
    now = loop.time()
    slow, fast, paused, late = FakeConn(), FakeConn(), FakeConn(), FakeConn()
    arrivals.update(slow, 50, True, now - 2)  # 25 B/s after 2 s: under 100 B/s
    arrivals.update(fast, 900, True, now - 2)  # 450 B/s
    arrivals.update(paused, 10, True, now - 5)
    paused.reading = False  # the server stopped reading it: not the sender's fault
    arrivals.update(late, 999, True, now - 11)  # fast enough, but past frame_timeout
    arrivals._sweep(loop)
    arrivals.close()
    assert "bytes/s" in slow.errors[0] and not fast.errors and not paused.errors
    assert "took over 10s" in late.errors[0]
    paused.reading = True
    arrivals.restart(paused, loop.time())  # reading again: its clock starts over
    arrivals._sweep(loop)
    arrivals.close()
    assert not paused.errors
