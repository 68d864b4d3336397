"""One timer serving many deadlines: expiry order, discards, bounded memory."""

from __future__ import annotations

import asyncio

from rpc._deadlines import Deadlines

from .live import IterationClock


async def test_expires_only_what_is_still_registered_in_order():
    loop = asyncio.get_running_loop()
    expired: list[str] = []
    deadlines = Deadlines(loop, expired.append)
    now = loop.time()
    deadlines.add(now + 0.06, "late")
    early = deadlines.add(now + 0.02, "early")
    deadlines.add(now + 0.04, "middle")
    kept = deadlines.add(now + 0.03, "kept")
    deadlines.discard(kept)
    await asyncio.sleep(0.1)
    assert expired == ["early", "middle", "late"]
    deadlines.discard(early)  # discarding an expired key is harmless
    assert len(deadlines) == 0


async def test_heap_stays_bounded_when_calls_end_in_time():
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop, lambda item: None)
    for i in range(10_000):
        deadlines.discard(deadlines.add(loop.time() + 60, i))
    assert len(deadlines) == 0 and len(deadlines._heap) < 1_000
    deadlines.close()


async def test_a_burst_of_expiries_is_spread_over_loop_iterations():
    """Each expiry wakes a task; thousands at once would all run in one loop iteration."""
    from rpc._deadlines import PER_TURN

    loop = asyncio.get_running_loop()
    clock = IterationClock(loop)
    seen: list[tuple[int, int]] = []
    deadlines = Deadlines(loop, lambda item: seen.append((clock.now, item)))
    now = loop.time()
    for i in range(1_000):
        deadlines.add(now + 0.001, i)
    await asyncio.sleep(0.2)
    assert [item for _, item in seen] == list(range(1_000))  # none lost, in order
    assert IterationClock.most_in_one([turn for turn, _ in seen]) <= PER_TURN
    deadlines.close()
