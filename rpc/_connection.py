"""One TCP (or TLS) link: framing, heartbeats, dead-peer detection, back-pressure.

Client and server connections share this base; they differ only in what they
do with a complete frame (:meth:`Connection.frame_received`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import ProtocolError
from ._frame import (
    DEFAULT_LIMITS,
    FIXED_HEADER,
    FLAG_PONG,
    HEARTBEAT,
    MAGIC,
    VERSION,
    FrameDecoder,
    Limits,
)

log = logging.getLogger("callscope.rpc")


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Idle heartbeats: a ping after ``interval`` seconds without reading anything;
    the link is dropped after ``missed`` intervals of silence."""

    interval: float = 15.0
    missed: int = 3

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.missed < 1:
            raise ValueError("heartbeat interval must be > 0 and missed >= 1")


Frame = tuple[int, int, int, int, bytes, bytes]
TURN = 0.005  # s of frame handling in one go before the loop gets a turn
# Frames handled in one go at most: each may start a task whose first step runs in the
# next loop iteration, all in that one iteration, so the count bounds it, not the time.
TURN_FRAMES = 128
READ_BURST = 1024 * 1024  # bytes read in one go before the loop gets a turn

_PING = FIXED_HEADER.pack(MAGIC, VERSION, HEARTBEAT, 0, 0, 0, 0, 0)
_PONG = FIXED_HEADER.pack(MAGIC, VERSION, HEARTBEAT, FLAG_PONG, 0, 0, 0, 0)


class Connection(asyncio.Protocol):
    """Base protocol. Subclasses implement :meth:`frame_received` and :meth:`on_closed`."""

    def __init__(
        self, *, limits: Limits = DEFAULT_LIMITS, heartbeat: Heartbeat | None = None
    ) -> None:
        self.limits = limits
        self.heartbeat = heartbeat or Heartbeat()
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.closed = False
        self._decoder = FrameDecoder(limits)
        self._loop = asyncio.get_running_loop()
        self._last_read = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._write_paused = False
        self._out: list[bytes] | None = None
        self._out_size = 0
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._backlog: list[Frame] | None = None  # frames left for the next turn
        self._burst = 0  # bytes read since the loop last had a turn (see data_received)
        self._held = 0  # bytes of a partial frame after the last read
        self.closed_future: asyncio.Future[None] = self._loop.create_future()

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and len(peername) >= 2:
            self.peer = f"{peername[0]}:{peername[1]}"
        transport.set_write_buffer_limits(high=1024 * 1024)  # type: ignore[attr-defined]
        self._schedule_heartbeat()

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        decoder = self._decoder
        before = self._held
        try:
            frames = decoder.feed(data)
        except ProtocolError as exc:
            self._dispatch(exc.frames)  # the whole frames before the bad one still count
            self.protocol_error(str(exc))
            return
        if self._backlog is not None:  # still working through earlier frames
            self._backlog.extend(frames)
        elif frames:
            self._dispatch(frames, yielding=True)
        buffered = decoder.buffered
        if buffered or before:
            self._held = buffered
            if not self.closed:
                self.partial_frame(buffered, buffered != before + len(data))
        self._burst += len(data)
        if self._burst >= READ_BURST and not self.closed and self.transport is not None:
            # uvloop reads a socket up to 32 times per wake-up: a fast sender of a big
            # frame would hold the loop for all of them. Let everything else run first.
            self._burst = 0
            self.transport.pause_reading()
            self._loop.call_soon(self._end_burst)

    def partial_frame(self, buffered: int, fresh: bool) -> None:
        """``buffered`` bytes of a frame still arriving are held (0: none); ``fresh``: a
        frame completed in this read, so those bytes began a new one. For subclasses."""

    def _end_burst(self) -> None:
        if not self.closed and self.transport is not None and self.may_read():
            self.transport.resume_reading()

    def _dispatch(self, frames: Sequence[Frame], yielding: bool = False) -> None:
        """Handle ``frames`` in order. ``yielding``: after TURN seconds, leave the rest for
        a later loop iteration and stop reading until then, so that one peer's pipelined
        burst (each frame cheap, thousands of them) cannot hold the loop."""
        end = time.perf_counter() + TURN if yielding and len(frames) > 1 else 0.0
        for i, frame in enumerate(frames):
            if self.closed:
                return
            if frame[0] == HEARTBEAT:
                if not frame[1] & FLAG_PONG and self.transport is not None:
                    self.transport.write(_PONG)
            else:
                try:
                    self.frame_received(*frame)
                except ProtocolError as exc:
                    self.protocol_error(str(exc))
                    return
            if (
                end
                and i & 3 == 3
                and (i + 1 >= TURN_FRAMES or time.perf_counter() > end)
                and i + 1 < len(frames)
            ):
                self._backlog = list(frames[i + 1 :])
                if self.transport is not None:
                    self.transport.pause_reading()
                self._loop.call_soon(self._work_backlog)
                return

    def _work_backlog(self) -> None:
        frames, self._backlog = self._backlog, None
        if frames and not self.closed:
            self._dispatch(frames, yielding=True)
        closed = self.closed or self.transport is None
        if self._backlog is None and not closed and self.may_read():
            self.transport.resume_reading()  # type: ignore[union-attr]

    def may_read(self) -> bool:
        """Whether reading may resume now (a subclass may hold it paused longer)."""
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._decoder.buffered and not self.closed:
            log.warning(
                "callscope protocol error from %s: connection closed mid-frame "
                "(%d bytes of a frame buffered)",
                self.peer,
                self._decoder.buffered,
            )
        self.closed = True
        self._decoder.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        self.on_closed(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- for subclasses ---------------------------------------------------
    def frame_received(
        self, ftype: int, flags: int, codec_id: int, rid: int, header: bytes, body: bytes
    ) -> None:
        raise NotImplementedError

    def on_closed(self, exc: Exception | None) -> None:
        """Called once when the link is gone, for whatever reason."""

    # -- helpers ----------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue a frame; frames queued in one loop iteration go out in one syscall."""
        if self.closed or self.transport is None:
            return
        pending = self._out
        if pending is None:
            self._out = [data]
            self._out_size = len(data)
            self._loop.call_soon(self.flush)
            return
        pending.append(data)
        self._out_size += len(data)
        if self._out_size > self.limits.max_pending_write:
            log.warning("callscope: %s is not reading; dropping the link", self.peer)
            self.abort()

    def flush(self) -> None:
        """Hand the queued frames to the transport now."""
        pending = self._out
        if pending is None:
            return
        self._out = None
        transport = self.transport
        if transport is None or self.closed:
            return
        if transport.get_write_buffer_size() + self._out_size > self.limits.max_pending_write:
            log.warning("callscope: %s is not reading; dropping the link", self.peer)
            self.abort()
            return
        transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    async def drain(self) -> None:
        """Wait while the peer is not reading (the write buffer is over its mark)."""
        if self._write_paused and not self.closed:
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def protocol_error(self, reason: str) -> None:
        log.warning(
            "callscope protocol error from %s: %s; closing that connection", self.peer, reason
        )
        self.abort()

    def close(self) -> None:
        """Close after flushing what is queued."""
        if self.transport is not None and not self.closed:
            self.flush()
            self.transport.close()
            self.closed = True  # frames still in this read are not served

    def abort(self) -> None:
        """Close at once, discarding queued writes."""
        self.closed = True
        self._out = None
        if self.transport is not None:
            self.transport.abort()

    def _schedule_heartbeat(self) -> None:
        self._timer = self._loop.call_later(self.heartbeat.interval, self._beat)

    def _beat(self) -> None:
        if self.closed:
            return
        idle = self._loop.time() - self._last_read
        if idle >= self.heartbeat.interval * self.heartbeat.missed:
            log.warning(
                "callscope: no heartbeat from %s for %.1fs; dropping the link", self.peer, idle
            )
            self.abort()
            return
        if idle >= self.heartbeat.interval * 0.99 and self.transport is not None:
            self.transport.write(_PING)
        self._schedule_heartbeat()
