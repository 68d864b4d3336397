"""Bodies are decoded only for calls that can run, within depth and element limits,
and no body holds the server's event loop for long (issue 10, defect 2)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import rpc
from rpc._frame import EVENT, FIXED_SIZE, REQUEST, pack_frame

from .live import LOOPS, RawPeer, RssPeak, live_server, stalls_ok, within_stall_limit

MP = rpc.get_codec("msgpack")
JS = rpc.get_codec("json")
MiB = 1024 * 1024
RSS_LIMIT = 256 * MiB


@rpc.service("demo.Echo")
class Echo:
    async def echo(self, value: Any) -> Any:
        return value

    async def size(self, value: Any) -> int:
        return len(value)


def frame(codec: rpc.Codec, header: dict[str, Any], body: bytes, rid: int = 1) -> bytes:
    return pack_frame(REQUEST, 0, codec.id, rid, codec.encode(header), body)


def bomb(codec: rpc.Codec, header: dict[str, Any], frame_size: int = 16 * MiB) -> bytes:
    """The issue's bomb: one frame of the largest size, nothing but nested empty arrays."""
    room = frame_size - FIXED_SIZE - len(codec.encode(header))
    if codec is MP:  # [[ [], [], ... ]] with the inner count declared up front
        body = b"\x91\xdd" + (room - 6).to_bytes(4, "big") + b"\x90" * (room - 6)
    else:
        inner = (room - 4) // 3
        body = b"[[" + b"[]," * (inner - 1) + b"[]]]"
    return frame(codec, header, body)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("loop_name", list(LOOPS))
@pytest.mark.parametrize("codec", [MP, JS], ids=lambda c: c.name)
def test_a_nested_array_bomb_is_refused_without_stalling_the_loop(
    loop_name: str, codec: rpc.Codec
) -> None:
    data = bomb(codec, {"s": "demo.Echo", "m": "echo"})
    with live_server(loop_name, Echo()) as (runner, server):

        def attack() -> tuple[Any, int]:
            peer = RawPeer(server.port, timeout=30)
            rss = RssPeak()
            try:
                peer.send(data)
                answer = peer.answers(1)[1]
                # The link and the server still serve, at once.
                after = peer.call(MP, {"s": "demo.Echo", "m": "echo"}, ["after"], 2)
                assert after == {"ok": "after"}
            finally:
                growth = rss.stop()
                peer.close()
            return answer, growth

        (answer, growth), stalls = within_stall_limit(runner, attack)
    assert answer["code"] == "BAD_REQUEST" and "elements" in answer["message"], answer
    assert stalls_ok(stalls), f"loop stalls (s) and allowances: {stalls}"
    assert growth < RSS_LIMIT, f"RSS grew {growth / MiB:.0f} MiB"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("codec", [MP, JS], ids=lambda c: c.name)
@pytest.mark.parametrize("size", ["small", "large"])
def test_depth_and_element_limits_answer_bad_request(codec: rpc.Codec, size: str) -> None:
    limits = rpc.Limits(max_depth=20, max_elements=5_000)
    pad = "x" * (100_000 if size == "large" else 0)  # a large body takes the thread path
    header = {"s": "demo.Echo", "m": "echo"}
    with live_server("asyncio", Echo(), limits=limits) as (_runner, server):
        peer = RawPeer(server.port)
        try:
            # [args], args and [x, pad] are levels 1 to 3: 17 more fit, 18 do not.
            ok, deep = nested(17), nested(18)
            assert peer.call(codec, header, [[ok, pad]], 1) == {"ok": [ok, pad]}
            answer = peer.call(codec, header, [[deep, pad]], 2)
            assert answer["code"] == "BAD_REQUEST" and "deeper" in answer["message"], answer
            fits = list(range(4_990))
            assert peer.call(codec, header, [[fits, pad]], 3) == {"ok": [fits, pad]}
            answer = peer.call(codec, header, [[[*fits, *range(20)], pad]], 4)
            assert answer["code"] == "BAD_REQUEST" and "elements" in answer["message"], answer
            many = {str(i): i for i in range(2_600)}  # keys count too
            answer = peer.call(codec, header, [[many, pad]], 5)
            assert answer["code"] == "BAD_REQUEST" and "elements" in answer["message"], answer
        finally:
            peer.close()


def test_a_deep_header_is_a_bad_request() -> None:
    header = {"s": "demo.Echo", "m": "echo", "x": nested(150)}
    with live_server("asyncio", Echo()) as (_runner, server):
        peer = RawPeer(server.port)
        try:
            answer = peer.call(MP, header, [1], 1)
            assert answer["code"] == "BAD_REQUEST" and "header" in answer["message"], answer
            assert peer.call(MP, {"s": "demo.Echo", "m": "echo"}, [2], 2) == {"ok": 2}
        finally:
            peer.close()


@pytest.mark.parametrize("target", ["unknown-service", "unknown-method"])
def test_a_call_that_cannot_run_is_not_decoded(target: str) -> None:
    """An undecodable body to a missing method: NOT_FOUND (it used to be decoded first)."""
    header = {"s": "demo.Echo", "m": "echo"}
    header["s" if target == "unknown-service" else "m"] = "nope"
    with live_server("asyncio", Echo()) as (_runner, server):
        peer = RawPeer(server.port)
        try:
            peer.send(frame(MP, header, b"\xc1" * 100_000) + frame(MP, header, b"\xc1", rid=2))
            answers = peer.answers(2)
        finally:
            peer.close()
    assert {a["code"] for a in answers.values()} == {"NOT_FOUND"}, answers


def test_an_unauthenticated_bomb_is_not_decoded() -> None:
    data = bomb(MP, {"s": "demo.Echo", "m": "echo"}, frame_size=4 * MiB)
    with live_server("asyncio", Echo(), tokens={"t0k": "alice"}) as (runner, server):

        def attack() -> Any:
            peer = RawPeer(server.port)
            try:
                peer.send(data)
                return peer.answers(1)[1]
            finally:
                peer.close()

        answer, stalls = within_stall_limit(runner, attack)
    assert answer["code"] == "UNAUTHENTICATED"
    assert stalls_ok(stalls), stalls


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", [MP, JS], ids=lambda c: c.name)
def test_big_legitimate_bodies_are_served_while_the_loop_stays_responsive(
    codec: rpc.Codec,
) -> None:
    value = [
        {"id": i, "name": f"item-{i}", "tags": ["a", "b"], "score": i / 7} for i in range(20_000)
    ]
    body = codec.encode([[value]])
    assert len(body) > MiB // 2  # ~220k elements: the sliced, GC-paused path
    with live_server("uvloop" if "uvloop" in LOOPS else "asyncio", Echo()) as (runner, server):

        def call() -> Any:
            peer = RawPeer(server.port, timeout=60)
            try:
                peer.send(frame(codec, {"s": "demo.Echo", "m": "size"}, body))
                return peer.answers(1)[1]
            finally:
                peer.close()

        answer, stalls = within_stall_limit(runner, call)
    assert answer == {"ok": 20_000}
    assert stalls_ok(stalls), stalls


async def test_an_abandoned_decode_stops_early() -> None:
    """A call whose deadline passes while its big body waits for the decoder gives up."""
    from rpc._intake import Decoder

    decoder = Decoder(rpc.Limits())
    body = JS.encode([[list(range(300_000))]])
    job = asyncio.ensure_future(decoder.later(JS, body))
    await asyncio.sleep(0.01)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    decoder.close()
    json.loads(body)  # the body itself was fine


def test_an_unauthorised_call_is_refused_before_its_body_is_read() -> None:
    seen: list[tuple[Any, str, str]] = []

    def authorizer(principal: Any, service: str, method: str) -> bool:
        seen.append((principal, service, method))
        if method == "boom":
            raise RuntimeError("authorizer bug")
        return method == "echo"

    hello = {"e": "hello", "token": "t0k"}
    with live_server("asyncio", Echo(), tokens={"t0k": "alice"}, authorizer=authorizer) as (
        _runner,
        server,
    ):
        peer = RawPeer(server.port)
        try:
            peer.send(pack_frame(EVENT, 0, MP.id, 0, MP.encode(hello), b""))
            assert peer.recv() is not None  # hello ok
            peer.send(
                frame(MP, {"s": "demo.Echo", "m": "size"}, b"\xc1" * 100_000, rid=1)
                + frame(MP, {"s": "demo.Echo", "m": "boom"}, b"\xc1", rid=2)
                + frame(MP, {"s": "demo.Echo", "m": "echo"}, MP.encode([["ok"]]), rid=3)
            )
            answers = peer.answers(3)
        finally:
            peer.close()
    assert answers[1]["code"] == answers[2]["code"] == "PERMISSION_DENIED", answers
    assert answers[3] == {"ok": "ok"}
    assert seen == [("alice", "demo.Echo", m) for m in ("size", "boom", "echo")]
