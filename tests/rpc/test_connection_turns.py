"""One peer's pipelined burst is handled a bounded number of frames per loop iteration.

Each request frame may start a task, and every task started in one iteration takes its
first step in the next, all together: a burst of thousands of cheap frames would hold
the loop as long as one expensive frame (issue 10's expiring-deadlines attack).
"""

from __future__ import annotations

import asyncio

from rpc import _frame as wire
from rpc._connection import TURN_FRAMES, Connection

from .live import IterationClock


class Counting(Connection):
    def __init__(self, clock: IterationClock, seen: list[int]) -> None:
        super().__init__()
        self.clock = clock
        self.seen = seen

    def frame_received(self, ftype, flags, codec_id, rid, header, body) -> None:  # type: ignore[no-untyped-def]
        self.seen.append(self.clock.now)


async def test_a_pipelined_burst_is_spread_over_loop_iterations():
    loop = asyncio.get_running_loop()
    clock = IterationClock(loop)
    seen: list[int] = []
    server = await loop.create_server(lambda: Counting(clock, seen), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        frame = wire.pack_frame(wire.REQUEST, 0, 1, 7, b"\x80", b"\x90")
        writer.write(frame * 2_000)
        await writer.drain()
        for _ in range(200):
            if len(seen) == 2_000:
                break
            await asyncio.sleep(0.01)
        assert len(seen) == 2_000
        assert IterationClock.most_in_one(seen) <= TURN_FRAMES
    finally:
        writer.close()
        server.close()
