"""What answers on a provider's port may be hostile too: the consumer holds a response to
the same depth and element limits a server holds a request to, decodes a big one off its
loop, and fails that call PROTOCOL_ERROR while its other calls go on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

import rpc
from rpc import _frame as wire

MP = rpc.get_codec("msgpack")
LIMITS = rpc.Limits()
BOMB = b"\x91\xdd" + (8 * 1024 * 1024).to_bytes(4, "big") + b"\x90" * (8 * 1024 * 1024)
DEEP = b"\x91" * (LIMITS.max_depth + 50) + b"\xc0"


class Answering(asyncio.Protocol):
    """Answers every request with ``body_for(its first argument)``, as a provider would."""

    def __init__(self, body_for: Callable[[object], bytes]) -> None:
        self.body_for = body_for
        self.decoder = wire.FrameDecoder(LIMITS)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for ftype, _flags, codec_id, rid, _header, body in self.decoder.feed(data):
            if ftype == wire.REQUEST:
                argument = MP.decode(body)[0][0]
                answer = wire.pack_frame(
                    wire.RESPONSE, 0, codec_id, rid, b"", self.body_for(argument)
                )
                self.transport.write(answer)  # type: ignore[attr-defined]


def _body(argument: object) -> bytes:
    return {"bomb": BOMB, "deep": DEEP}.get(str(argument), MP.encode(argument))


async def _worst_stall(until: asyncio.Future[object]) -> float:
    worst, last = 0.0, time.perf_counter()
    while not until.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        worst, last = max(worst, now - last - 0.005), now
    return worst


@pytest.mark.timeout(60)
async def test_a_bomb_or_a_too_deep_answer_fails_its_call_and_nothing_else() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Answering(_body), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with rpc.AsyncClient(f"127.0.0.1:{port}", timeout=30, injvm=False) as client:
            assert await client.generic("demo.Echo", "echo", "warm") == "warm"
            bomb = asyncio.ensure_future(client.generic("demo.Echo", "echo", "bomb"))
            stall = await _worst_stall(bomb)
            with pytest.raises(rpc.RpcError) as caught:
                await bomb
            assert caught.value.code == "PROTOCOL_ERROR"
            assert (
                "elements" in caught.value.message and f"127.0.0.1:{port}" in caught.value.message
            )
            assert stall < 0.5, f"the consumer's loop stalled {stall * 1e3:.0f} ms"
            with pytest.raises(rpc.RpcError, match="nesting") as deep:
                await client.generic("demo.Echo", "echo", "deep")
            assert deep.value.code == "PROTOCOL_ERROR"
            assert await client.generic("demo.Echo", "echo", "after") == "after"  # same link
    finally:
        server.close()
