"""The wire format: length-prefixed binary frames (DESIGN §3.1).

A frame is a fixed 22-byte header, then a header map and a body, both encoded
by the codec the fixed header names::

    0      2    3     4      5      6            14           18          22
    +------+----+-----+------+------+------------+------------+-----------+
    |magic |ver |type |flags |codec | request id | header len | body len  |
    |0xCA5C| 1  |     |      |      |   u64 BE   |   u32 BE   |  u32 BE   |
    +------+----+-----+------+------+------------+------------+-----------+

Frame types: REQUEST, RESPONSE, ONEWAY, HEARTBEAT, EVENT. Flags: ``FLAG_ERROR``
on a response whose body is an error map, ``FLAG_PONG`` on a heartbeat reply.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from ._errors import ProtocolError

MAGIC = 0xCA5C
VERSION = 1
FIXED_HEADER = struct.Struct(">HBBBBQII")
FIXED_SIZE = FIXED_HEADER.size  # 22

REQUEST = 1
RESPONSE = 2
ONEWAY = 3
HEARTBEAT = 4
EVENT = 5
FRAME_TYPES = frozenset({REQUEST, RESPONSE, ONEWAY, HEARTBEAT, EVENT})

FLAG_ERROR = 0x01
FLAG_PONG = 0x02

# Short keys of the header map: they travel in every frame.
H_SERVICE = "s"
H_METHOD = "m"
H_VERSION = "v"
H_GROUP = "g"
H_TIMEOUT_MS = "t"
H_ATTACHMENTS = "a"
H_EVENT = "e"

_BIG_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a peer may send.

    A frame over ``max_frame_size`` or with a header over ``max_header_size`` closes
    that connection. A request whose header or body nests deeper than ``max_depth``
    (the body's own ``[args, kwargs, attachments]`` list is level 1), holds more than
    ``max_elements`` elements (array items, map keys and map values), or carries more
    than ``max_attachments`` attachments is a BAD_REQUEST for that call, refused
    before it is built. A peer that reads nothing while over ``max_pending_write``
    bytes of answers wait for it is dropped.

    Slow senders (a server's side): a frame must arrive whole within
    ``frame_timeout`` seconds of its first byte and, after its first
    ``frame_rate_grace`` seconds, at ``frame_min_rate`` bytes/s on average, or its
    connection is closed. ``max_buffered`` caps the bytes a server holds for frames
    not yet decoded (still arriving, or waiting for the decoding thread) across all
    its connections; a connection whose partial frame would grow past it is closed.
    """

    max_frame_size: int = 16 * 1024 * 1024
    max_header_size: int = 64 * 1024
    max_attachments: int = 64
    max_pending_write: int = 64 * 1024 * 1024
    max_depth: int = 100
    max_elements: int = 256 * 1024
    frame_timeout: float = 30.0
    frame_min_rate: float = 16 * 1024
    frame_rate_grace: float = 2.0
    max_buffered: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if name in _SECONDS_OR_RATES:
                ok = value.__class__ in (int, float) and 0 < value < math.inf
                kind = "a positive finite number"
            else:
                ok = value.__class__ is int and value > 0
                kind = "a positive int"
            if not ok:
                raise ValueError(f"Limits.{name} must be {kind}, not {value!r}")
        if self.max_header_size > self.max_frame_size:
            raise ValueError("max_header_size cannot exceed max_frame_size")
        if self.max_buffered < self.max_frame_size:
            raise ValueError("max_buffered must hold at least one frame of max_frame_size")


_SECONDS_OR_RATES = frozenset({"frame_timeout", "frame_min_rate", "frame_rate_grace"})


DEFAULT_LIMITS = Limits()


def pack_frame(
    frame_type: int, flags: int, codec_id: int, request_id: int, header: bytes, body: bytes
) -> bytes:
    """One frame as bytes."""
    return (
        FIXED_HEADER.pack(
            MAGIC, VERSION, frame_type, flags, codec_id, request_id, len(header), len(body)
        )
        + header
        + body
    )


class FrameDecoder:
    """Splits a byte stream into frames, enforcing :class:`Limits`.

    ``feed`` returns the complete frames seen so far as tuples
    ``(type, flags, codec_id, request_id, header_bytes, body_bytes)`` and keeps
    any partial tail. It raises :class:`~rpc.ProtocolError` on a bad magic,
    version, type or size; the caller then closes the connection.
    """

    __slots__ = ("_buffer", "_limits")

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buffer = bytearray()
        self._limits = limits

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def clear(self) -> None:
        """Drop a partial frame (its connection is gone)."""
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, int, int, bytes, bytes]]:
        buf = self._buffer
        buf += data
        frames: list[tuple[int, int, int, int, bytes, bytes]] = []
        pos = 0
        end = len(buf)
        limits = self._limits
        unpack = FIXED_HEADER.unpack_from
        try:
            while end - pos >= FIXED_SIZE:
                magic, version, ftype, flags, codec, rid, hlen, blen = unpack(buf, pos)
                if magic != MAGIC:
                    raise ProtocolError(f"bad magic 0x{magic:04x}")
                if version != VERSION:
                    raise ProtocolError(f"unsupported protocol version {version}")
                if ftype not in FRAME_TYPES:
                    raise ProtocolError(f"unknown frame type {ftype}")
                if hlen > limits.max_header_size:
                    raise ProtocolError(
                        f"header of {hlen} bytes exceeds the limit of {limits.max_header_size}"
                    )
                total = FIXED_SIZE + hlen + blen
                if total > limits.max_frame_size:
                    raise ProtocolError(
                        f"frame of {total} bytes exceeds the limit of {limits.max_frame_size}"
                    )
                if end - pos < total:
                    break
                start = pos + FIXED_SIZE
                mid = start + hlen
                pos += total
                if pos == end and blen >= _BIG_BODY:
                    # The buffer ends with this body: hand the buffer itself over (no
                    # copy of up to 16 MiB, tens of ms on a busy machine); dropping its
                    # front only moves the start of a bytearray.
                    header = bytes(buf[start:mid])
                    del buf[:mid]
                    frames.append((ftype, flags, codec, rid, header, buf))
                    self._buffer = buf = bytearray()
                    pos = 0
                    break
                if blen < _BIG_BODY:
                    body = bytes(buf[mid:pos])
                else:  # one copy, not the two of bytes(buf[mid:pos])
                    with memoryview(buf) as view:
                        body = bytes(view[mid:pos])
                frames.append((ftype, flags, codec, rid, bytes(buf[start:mid]), body))
        except ProtocolError as exc:
            exc.frames = frames
            raise
        finally:
            if pos:
                del buf[:pos]
        return frames
