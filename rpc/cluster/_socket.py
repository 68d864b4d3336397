"""The socket invoker: one attempt as a request frame on the provider's multiplexed link.

It keeps one :class:`~rpc._channel.Channel` per provider address (``connections``
of them, used in turn, when asked for more), the encoded
request headers (a call's identity repeats, so its header bytes are cached), and
one timer for every pending deadline.
"""

from __future__ import annotations

import asyncio
import math
import ssl as _ssl
import time
from collections.abc import Collection
from typing import Any

from .._channel import Backoff, Channel
from .._codec import Codec, get_codec
from .._connection import Heartbeat
from .._deadlines import Deadlines
from .._errors import BadRequestError, ProtocolError, RpcError, TimeoutError
from .._frame import (
    DEFAULT_LIMITS,
    FLAG_ERROR,
    H_GROUP,
    H_METHOD,
    H_SERVICE,
    H_TIMEOUT_MS,
    H_VERSION,
    Limits,
)
from .._intake import ON_LOOP, Decoder
from .._invocation import Invocation

__all__ = ["SocketInvoker"]

_MAX_HEADERS = 512


class SocketInvoker:
    """Sends each attempt to ``invocation.peer`` over TCP (or TLS) and decodes the answer."""

    def __init__(
        self,
        *,
        codec: Codec,
        ssl: _ssl.SSLContext | None = None,
        token: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        heartbeat: Heartbeat | None = None,
        connect_timeout: float = 3.0,
        backoff: Backoff | None = None,
        connections: int = 1,
    ) -> None:
        if isinstance(connections, bool) or not isinstance(connections, int):
            raise ValueError(f"connections must be an integer in 1..64, not {connections!r}")
        if not 1 <= connections <= 64:
            raise ValueError(f"connections must be an integer in 1..64, not {connections!r}")
        self.codec = codec
        self.connections = connections
        self._channel_options: dict[str, Any] = {
            "ssl": ssl,
            "token": token,
            "codec": codec,
            "limits": limits,
            "heartbeat": heartbeat,
            "connect_timeout": connect_timeout,
            "backoff": backoff,
        }
        self.channels: dict[str, Channel] = {}  # the first link to each provider
        self._pools: dict[str, list[Channel]] = {}  # all its links, when connections > 1
        self._turn = 0
        self._troubled: set[str] = set()  # links that failed or drain: checked by unavailable()
        self._headers: dict[tuple[Any, ...], bytes] = {}  # encoded request headers, bounded
        self._deadlines: Deadlines | None = None
        # Answers are held to the same depth and element limits as requests: a provider
        # (or whatever answers on its port) cannot stall the consumer's loop with one.
        self._decoder = Decoder(limits)

    def unavailable(self) -> Collection[str]:
        """Providers whose link is backing off after a failed connect, or draining."""
        troubled = self._troubled
        if not troubled:
            return ()
        down = set()
        for address in list(troubled):
            channel = self.channels.get(address)
            if channel is None or channel.healthy:
                troubled.discard(address)
            elif not channel.available:
                down.add(address)
        return down

    def _channel(self, address: str) -> Channel:
        channel = self.channels.get(address)
        if channel is None:
            channel = self.channels[address] = Channel(
                address, on_trouble=self._troubled.add, **self._channel_options
            )
        return channel

    def _pooled(self, address: str) -> Channel:
        """The next of the ``connections`` links to ``address``, in turn."""
        pool = self._pools.get(address)
        if pool is None:
            first = self.channels.get(address) or self._channel(address)
            more = [
                Channel(address, on_trouble=self._troubled.add, **self._channel_options)
                for _ in range(self.connections - 1)
            ]
            pool = self._pools[address] = [first, *more]
        self._turn += 1
        return pool[self._turn % len(pool)]

    async def invoke(self, inv: Invocation) -> Any:
        peer = inv.peer
        if self.connections == 1:
            channel = self.channels.get(peer) or self._channel(peer)
        else:
            channel = self._pooled(peer)
        conn = channel.conn
        if conn is None or conn.closed or conn.draining:
            conn = await channel.connection()
        codec = self.codec
        remaining = timeout_ms = None
        if inv.deadline is not None:
            remaining = inv.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{inv.service}/{inv.method}: deadline passed before sending")
            timeout_ms = math.ceil(remaining * 1000)
        header = self._header(inv, timeout_ms)
        if inv.attachments:  # last in the body, so the header stays cacheable (see _server)
            body = codec.encode([inv.args, inv.kwargs, inv.attachments])
        else:
            body = codec.encode([inv.args, inv.kwargs] if inv.kwargs else [inv.args])
        if conn._write_paused:
            await conn.drain()
        rid, fut = conn.send(inv.oneway, codec.id, header, body)
        if fut is None:
            return None
        try:
            if remaining is None:
                flags, codec_id, data = await fut
            else:
                deadlines = self._deadlines or self._start_deadlines()
                key = deadlines.add(conn._loop.time() + remaining, (conn, rid, inv))
                try:
                    flags, codec_id, data = await fut
                finally:
                    deadlines.discard(key)
        except RpcError as err:
            # Written, and no answer: the provider may have run it (see cluster.in_doubt).
            err.in_doubt = True  # type: ignore[attr-defined]
            raise
        what = f"response from {peer}"
        try:
            if codec_id != codec.id:
                codec = get_codec(codec_id)
            if len(data) <= ON_LOOP:
                decoded = self._decoder.now(codec, data, what, ProtocolError)
            else:
                decoded = await self._decoder.later(codec, data, what, ProtocolError)
        except BadRequestError as err:  # past the limits: the provider's fault, not ours
            raise ProtocolError(err.message) from None
        except LookupError:
            raise ProtocolError(f"{what}: unknown codec id {codec_id}") from None
        if flags & FLAG_ERROR:
            raise RpcError.from_dict(decoded)
        return decoded

    def _header(self, inv: Invocation, timeout_ms: int | None) -> bytes:
        """The encoded header map: the call's identity only, so it is cached."""
        key = (inv.service, inv.method, inv.version, inv.group, timeout_ms)
        cached = self._headers.get(key)
        if cached is not None:
            return cached
        header: dict[str, Any] = {H_SERVICE: inv.service, H_METHOD: inv.method}
        if inv.version:
            header[H_VERSION] = inv.version
        if inv.group:
            header[H_GROUP] = inv.group
        if timeout_ms is not None:
            header[H_TIMEOUT_MS] = timeout_ms
        encoded = self.codec.encode(header)
        if len(self._headers) >= _MAX_HEADERS:
            self._headers.clear()
        self._headers[key] = encoded
        return encoded

    def _start_deadlines(self) -> Deadlines:
        self._deadlines = Deadlines(asyncio.get_running_loop(), _expire)
        return self._deadlines

    async def close(self) -> None:
        if self._deadlines is not None:
            self._deadlines.close()
        self._decoder.close()
        pooled = [channel for pool in self._pools.values() for channel in pool]
        channels = list({id(c): c for c in [*self.channels.values(), *pooled]}.values())
        self.channels, self._pools = {}, {}
        for channel in channels:
            channel.close()
        await asyncio.gather(*(channel.wait_closed() for channel in channels))


def _expire(item: tuple[Any, int, Invocation]) -> None:
    conn, rid, inv = item
    conn.expire(rid, TimeoutError(f"{inv.service}/{inv.method} timed out waiting for {inv.peer}"))
