"""Turning a request's bytes into values without letting one request stall the server.

Small bodies (up to ``ON_LOOP`` bytes: a few ms of decoding at worst) are decoded
on the event loop. Larger ones go to one decoding thread: the built-in codecs
decode them in slices or with the pure-Python scanner, so the interpreter switches
back to the loop every few ms however hostile the body (a C decoder called on a
big body in a thread would hold the GIL, and so the loop, for its whole run).
Either way the depth and element limits of :class:`~rpc.Limits` hold (``_bounded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from ._bounded import check_shape
from ._codec import Codec
from ._errors import BadRequestError, RpcError
from ._frame import Limits

__all__ = ["ON_LOOP", "Arrivals", "Decoder"]

ON_LOOP = 16 * 1024


def _yield_cpu() -> None:
    """Lower the decoding thread's CPU priority (Linux: per thread), so that on a busy
    machine the OS runs the event loop's thread first when both wait for a core."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class Decoder:
    """Decodes headers and bodies within ``limits``; big bodies on its own thread."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._max_depth = limits.max_depth
        self._max_elements = limits.max_elements
        self._pool: ThreadPoolExecutor | None = None

    def now(
        self,
        codec: Codec,
        data: bytes,
        what: str = "body",
        undecodable: type[RpcError] = BadRequestError,
    ) -> Any:
        """Decode here (the caller keeps ``data`` small): BAD_REQUEST past the limits,
        ``undecodable`` if the codec cannot read it."""
        openers = getattr(codec, "openers", None)
        size = len(data)
        if openers is None or size > self._max_elements:
            return self._decode(codec, data, what, None, undecodable)
        # One value takes a byte at least: the element count is within the limit, and
        # the depth too unless the bytes hold max_depth container openings.
        try:
            value = codec.decode(data)
        except RecursionError:
            raise BadRequestError(f"{what}: nesting too deep") from None
        except Exception as exc:
            raise undecodable(f"undecodable {what}: {exc}") from None
        depth = self._max_depth  # could_nest, inlined: this runs for every call
        if size >= depth and size - len(data.translate(None, openers)) >= depth:
            try:
                check_shape(value, depth, self._max_elements)
            except BadRequestError as err:
                raise BadRequestError(f"{what}: {err.message}") from None
        return value

    async def later(
        self,
        codec: Codec,
        data: bytes,
        what: str = "body",
        undecodable: type[RpcError] = BadRequestError,
    ) -> Any:
        """Decode a big body on the decoding thread; cancelling abandons it early."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="callscope-decode", initializer=_yield_cpu
            )
        gave_up = [False]
        job = asyncio.get_running_loop().run_in_executor(
            self._pool, self._off_loop, codec, data, gave_up, what, undecodable
        )
        try:
            return await job
        except asyncio.CancelledError:
            gave_up[0] = True
            raise

    def _off_loop(
        self,
        codec: Codec,
        data: bytes,
        gave_up: list[bool],
        what: str,
        undecodable: type[RpcError],
    ) -> Any:
        return self._decode(codec, data, what, lambda: gave_up[0], undecodable)

    def _decode(
        self,
        codec: Codec,
        data: bytes,
        what: str,
        abandoned: Callable[[], bool] | None,
        undecodable: type[RpcError],
    ) -> Any:
        limits = self.limits
        try:
            limited = getattr(codec, "decode_limited", None)
            if limited is None:  # a codec of its own: decode, then check
                value = codec.decode(data)
                check_shape(value, limits.max_depth, limits.max_elements)
                return value
            if abandoned is None:
                return limited(data, limits.max_depth, limits.max_elements)
            return limited(data, limits.max_depth, limits.max_elements, abandoned)
        except BadRequestError as err:
            raise BadRequestError(f"{what}: {err.message}") from None
        except Exception as exc:
            raise undecodable(f"undecodable {what}: {exc}") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class Arrivals:
    """Frames still arriving on a server's connections.

    Their bytes count against ``Limits.max_buffered`` (with the bodies waiting for the
    decoding thread, which the server adds to :attr:`held`); a connection whose
    partial frame grows past it is closed. A sweep every fraction of a second closes
    connections whose frame is late (``frame_timeout``) or slow (under
    ``frame_min_rate`` after ``frame_rate_grace``): a slowloris that trickles one byte
    at a time keeps no connection, and no memory, for long.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.held = 0
        self._receiving: dict[Receiver, float] = {}  # connection -> its frame's first byte
        self._timer: asyncio.TimerHandle | None = None
        self.interval = min(max(min(limits.frame_timeout, limits.frame_rate_grace) / 4, 0.05), 0.5)

    def update(self, conn: Receiver, buffered: int, fresh: bool, now: float) -> None:
        """``conn`` now holds ``buffered`` bytes of a partial frame; ``fresh``: a frame
        completed in this read, so those bytes began a new one."""
        self.held += buffered - conn.partial
        grew = buffered > conn.partial
        conn.partial = buffered
        if not buffered:
            self._receiving.pop(conn, None)
            return
        if fresh or conn not in self._receiving:
            self._receiving[conn] = now
        if grew and self.held > self.limits.max_buffered:
            self.release(conn)
            conn.protocol_error(
                f"the server holds {self.held} bytes of frames not yet decoded "
                f"(limit {self.limits.max_buffered})"
            )

    def restart(self, conn: Receiver, now: float) -> None:
        """The server held ``conn`` unread (its answers were not read): its frame's clock
        starts again now, as the sender could not send meanwhile."""
        if conn in self._receiving:
            self._receiving[conn] = now

    def release(self, conn: Receiver) -> None:
        """The connection is gone: its partial frame no longer counts."""
        self.held -= conn.partial
        conn.partial = 0
        self._receiving.pop(conn, None)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(self.interval, self._sweep, loop)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        limits = self.limits
        for conn, since in list(self._receiving.items()):
            if not conn.may_read():  # paused by the server, not slow
                continue
            took = now - since
            if took > limits.frame_timeout:
                self.release(conn)
                conn.protocol_error(
                    f"a frame took over {limits.frame_timeout:g}s to arrive "
                    f"({conn.partial} bytes so far)"
                )
            elif took > limits.frame_rate_grace and conn.partial < limits.frame_min_rate * took:
                rate = conn.partial / took
                self.release(conn)
                conn.protocol_error(
                    f"a frame arrives at {rate:.0f} bytes/s, "
                    f"under the minimum of {limits.frame_min_rate:g}"
                )
        self._timer = loop.call_later(self.interval, self._sweep, loop)


class Receiver(Protocol):
    """What :class:`Arrivals` needs of a connection."""

    partial: int

    def protocol_error(self, reason: str) -> None: ...

    def may_read(self) -> bool: ...
