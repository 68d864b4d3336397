"""Property-based fuzzing of the frame decoder and the codecs (DESIGN §3.1).

Properties: valid frames survive any chunking unchanged; arbitrary bytes only
ever raise ``rpc.ProtocolError``; the decoder's buffer stays bounded by the
frame limit; a bad or oversized fixed header is refused from its 22 bytes,
before any body is buffered; codecs fail on garbage with ordinary exceptions.
"""

from __future__ import annotations

import contextlib
import itertools
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rpc
from rpc._frame import (
    FIXED_HEADER,
    FIXED_SIZE,
    FRAME_TYPES,
    MAGIC,
    REQUEST,
    VERSION,
    FrameDecoder,
    pack_frame,
)

# Small limits so that "oversized" is cheap to produce and the bound is tight.
LIMITS = rpc.Limits(max_frame_size=4096, max_header_size=1024, max_attachments=8)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Frame = tuple[int, int, int, int, bytes, bytes]

frame_types = st.sampled_from(sorted(FRAME_TYPES))
bad_types = st.integers(0, 255).filter(lambda t: t not in FRAME_TYPES)
u8 = st.integers(0, 255)
request_ids = st.integers(0, 2**64 - 1)

frames: st.SearchStrategy[Frame] = st.tuples(
    frame_types,
    u8,
    u8,
    request_ids,
    st.binary(max_size=LIMITS.max_header_size // 4),
    st.binary(max_size=LIMITS.max_frame_size // 4),
)


def serialize(items: list[Frame]) -> bytes:
    return b"".join(pack_frame(*f) for f in items)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


# -- (a) round trip ---------------------------------------------------------
@FAST
@given(items=st.lists(frames, max_size=12), data=st.data())
def test_any_chunking_decodes_to_the_same_frames(items: list[Frame], data: st.DataObject) -> None:
    stream = serialize(items)
    cuts = data.draw(st.lists(st.integers(0, max(len(stream), 1)), max_size=40), label="cuts")
    decoder = FrameDecoder(LIMITS)
    out: list[Frame] = []
    for chunk in chunked(stream, cuts):
        out += decoder.feed(chunk)
        assert decoder.buffered < LIMITS.max_frame_size
    assert out == items
    assert decoder.buffered == 0


@settings(max_examples=30, deadline=None)
@given(items=st.lists(frames, min_size=1, max_size=3))
def test_byte_by_byte_feeding_loses_nothing(items: list[Frame]) -> None:
    stream = serialize(items)
    decoder = FrameDecoder(LIMITS)
    out: list[Frame] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == items and decoder.buffered == 0


def test_frames_exactly_at_the_limits_are_accepted() -> None:
    header = b"h" * LIMITS.max_header_size
    body = b"b" * (LIMITS.max_frame_size - FIXED_SIZE - len(header))
    frame = (REQUEST, 0, 1, 7, header, body)
    assert FrameDecoder(LIMITS).feed(pack_frame(*frame)) == [frame]


# -- (b) arbitrary bytes ------------------------------------------------------
def _mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    for pos, value in flips:
        buf[pos % len(buf)] = value
    return bytes(buf)


# Pure garbage, valid frames, and valid frames with a few bytes overwritten
# (the last reach the length and type checks that random bytes almost never do).
chunks = st.one_of(
    st.binary(max_size=600),
    frames.map(lambda f: pack_frame(*f)),
    st.builds(
        _mutate,
        frames.map(lambda f: pack_frame(*f)),
        st.lists(st.tuples(st.integers(0, 40), u8), min_size=1, max_size=4),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.lists(chunks, max_size=20))
def test_arbitrary_bytes_raise_only_protocol_error_and_stay_bounded(stream: list[bytes]) -> None:
    decoder = FrameDecoder(LIMITS)
    for chunk in stream:
        try:
            got = decoder.feed(chunk)
        except rpc.ProtocolError as exc:
            assert exc.code == rpc.ErrorCode.PROTOCOL_ERROR
            return  # the connection is closed: nothing more is fed
        # A partial frame is always smaller than the frame limit, whatever was fed.
        assert decoder.buffered < LIMITS.max_frame_size
        assert decoder.buffered <= LIMITS.max_frame_size + len(chunk)
        for ftype, flags, codec, rid, header, body in got:
            assert ftype in FRAME_TYPES
            assert 0 <= flags <= 255 and 0 <= codec <= 255 and 0 <= rid < 2**64
            assert len(header) <= LIMITS.max_header_size
            assert FIXED_SIZE + len(header) + len(body) <= LIMITS.max_frame_size


# -- (c) bad fixed headers are refused from the fixed header alone ---------------
def fixed(magic=MAGIC, version=VERSION, ftype=1, hlen=0, blen=0) -> bytes:
    return FIXED_HEADER.pack(magic, version, ftype, 0, 1, 1, hlen, blen)


u32 = st.integers(0, 2**32 - 1)
bad_fixed_headers = st.one_of(
    st.builds(fixed, magic=st.integers(0, 0xFFFF).filter(lambda m: m != MAGIC)),
    st.builds(fixed, version=u8.filter(lambda v: v != VERSION)),
    st.builds(fixed, ftype=bad_types),
    st.builds(fixed, ftype=frame_types, hlen=st.integers(LIMITS.max_header_size + 1, 2**32 - 1)),
    st.builds(
        fixed,
        ftype=frame_types,
        hlen=st.integers(0, LIMITS.max_header_size),
        blen=st.integers(LIMITS.max_frame_size - FIXED_SIZE + 1, 2**32 - 1),
    ),
    # Both lengths near 2**32: their sum must not wrap into "small".
    st.builds(fixed, ftype=frame_types, hlen=u32, blen=st.integers(2**32 - 64, 2**32 - 1)),
)


@FAST
@given(
    header=bad_fixed_headers,
    prefix=st.lists(frames, max_size=3),
    split=st.integers(1, FIXED_SIZE),
)
def test_bad_fixed_header_is_refused_before_its_body(
    header: bytes, prefix: list[Frame], split: int
) -> None:
    decoder = FrameDecoder(LIMITS)
    # Valid frames before it are fine; the bad header is fed in two pieces and
    # must be refused as soon as its 22nd byte arrives, with no body at all.
    decoder.feed(serialize(prefix))
    if split < FIXED_SIZE:
        assert decoder.feed(header[:split]) == []
        assert decoder.buffered == split
    with pytest.raises(rpc.ProtocolError):
        decoder.feed(header[split:] if split < FIXED_SIZE else header)


@pytest.mark.parametrize("limits", [LIMITS, rpc.Limits()])
def test_giant_declared_body_is_never_buffered(limits: rpc.Limits) -> None:
    decoder = FrameDecoder(limits)
    with pytest.raises(rpc.ProtocolError, match="exceeds the limit"):
        decoder.feed(fixed(blen=2**32 - 1) + b"x" * 1000)
    decoder = FrameDecoder(limits)
    with pytest.raises(rpc.ProtocolError, match="exceeds the limit"):
        decoder.feed(fixed(hlen=limits.max_header_size + 1))


# -- (d) codecs on garbage -------------------------------------------------------
CODECS = [rpc.get_codec("msgpack"), rpc.get_codec("json")]

garbage = st.one_of(
    st.binary(max_size=2000),
    # msgpack containers and strings declaring huge lengths (no allocation may follow)
    st.sampled_from([b"\xdc", b"\xdd", b"\xde", b"\xdf", b"\xc6", b"\xdb", b"\xc9"]).flatmap(
        lambda tag: st.binary(min_size=0, max_size=12).map(lambda rest: tag + b"\xff\xff" + rest)
    ),
    st.text(max_size=300).map(str.encode),
    st.text(alphabet='[]{}":,0123456789.eE+-tfnulrNaIiy ', max_size=400).map(str.encode),
)


def _decode_ordinarily(codec: rpc.Codec, data: bytes) -> None:
    start = time.monotonic()
    with contextlib.suppress(Exception):  # ordinary exceptions only: anything else escapes
        codec.decode(data)
    assert time.monotonic() - start < 2.0, f"{codec.name} took too long on {data[:40]!r}"


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=400, deadline=None)
@given(data=garbage)
def test_codec_decode_of_garbage_raises_ordinary_exceptions(codec: rpc.Codec, data: bytes) -> None:
    _decode_ordinarily(codec, data)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "data",
    [
        b"\x91" * 200_000,  # msgpack: arrays nested 200k deep
        b"\x81\xa1k" * 100_000,  # msgpack: maps nested 100k deep
        b"[" * 200_000,  # json: arrays nested 200k deep
        b'{"k":' * 100_000,
        b"\xdd\xff\xff\xff\xff",  # msgpack: array32 of 4G elements, no data
        b"9" * 100_000,  # json: a 100k-digit integer
        b"\xff\xfe" + "[1]".encode("utf-16-le"),
    ],
    ids=["mp-deep-array", "mp-deep-map", "json-deep", "json-deep-map", "mp-huge", "bigint", "bom"],
)
def test_codec_decode_of_hostile_input_fails_cleanly(codec: rpc.Codec, data: bytes) -> None:
    _decode_ordinarily(codec, data)


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@FAST
@given(value=plain)
def test_codec_round_trip_of_plain_data(codec: rpc.Codec, value: object) -> None:
    assert codec.decode(codec.encode(value)) == value
