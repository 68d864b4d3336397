"""The consumer's link to one provider address: multiplexed requests, reconnects.

A :class:`Channel` keeps at most one live :class:`ClientConnection` to its
address, reconnects lazily with jittered exponential backoff, performs the
token handshake, and tells the client whether the provider looks usable.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl as _ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._codec import Codec, get_codec
from ._connection import Connection, Heartbeat
from ._directory import parse_address
from ._errors import (
    ProtocolError,
    RpcError,
    TimeoutError,
    UnauthenticatedError,
    UnavailableError,
)
from ._frame import (
    DEFAULT_LIMITS,
    EVENT,
    FIXED_HEADER,
    H_EVENT,
    MAGIC,
    ONEWAY,
    REQUEST,
    RESPONSE,
    VERSION,
    Limits,
    pack_frame,
)

log = logging.getLogger("callscope.rpc")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``base * 2**n`` capped at ``maximum``, times a random 0.5..1.5."""

    base: float = 0.1
    maximum: float = 10.0

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.base * (2 ** min(failures - 1, 30))) * random.uniform(
            0.5, 1.5
        )


Response = tuple[int, int, bytes]  # flags, codec id, body


class ClientConnection(Connection):
    """Requests out, responses matched back by request id."""

    def __init__(
        self,
        *,
        limits: Limits,
        heartbeat: Heartbeat,
        address: str,
        on_draining: Callable[[str], None] | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(limits=limits, heartbeat=heartbeat)
        self.address = address
        self._on_draining = on_draining
        self._on_refused = on_refused
        self.pending: dict[int, asyncio.Future[Response]] = {}
        self.draining = False
        self.refusal = ""  # why the provider refused this link (connection control)
        self.hello: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._next_id = 1

    def send(
        self, oneway: bool, codec_id: int, header: bytes, body: bytes
    ) -> tuple[int, asyncio.Future[Response] | None]:
        """Write one request; returns its id and the future of its response (none if oneway)."""
        rid = self._next_id
        self._next_id = rid + 1
        self.write(
            FIXED_HEADER.pack(
                MAGIC,
                VERSION,
                ONEWAY if oneway else REQUEST,
                0,
                codec_id,
                rid,
                len(header),
                len(body),
            )
            + header
            + body
        )
        if oneway:
            return rid, None
        fut: asyncio.Future[Response] = self._loop.create_future()
        self.pending[rid] = fut
        return rid, fut

    def expire(self, rid: int, error: Exception) -> None:
        """Give up on request ``rid``: a late response will be ignored."""
        fut = self.pending.pop(rid, None)
        if fut is not None and not fut.done():
            fut.set_exception(error)

    def frame_received(
        self, ftype: int, flags: int, codec_id: int, rid: int, header: bytes, body: bytes
    ) -> None:
        if ftype == RESPONSE:
            fut = self.pending.pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result((flags, codec_id, body))
        elif ftype == EVENT:
            self._event(codec_id, header)
        else:
            raise ProtocolError(f"unexpected frame type {ftype} from a provider")

    def _event(self, codec_id: int, header: bytes) -> None:
        try:
            hdr = get_codec(codec_id).decode(header)
        except Exception as exc:
            raise ProtocolError(f"undecodable event header: {exc}") from None
        if not isinstance(hdr, dict):
            raise ProtocolError("event header is not a map")
        kind = hdr.get(H_EVENT)
        if kind == "closing":
            self.draining = True
            if self._on_draining is not None:
                self._on_draining(self.address)
            log.info(
                "callscope: provider %s is shutting down; no new calls on that link", self.address
            )
        elif kind == "hello" and not self.hello.done():
            self.hello.set_result(hdr)
        elif kind == "refused":  # beyond the provider's connection caps: it closes the link
            self.refusal = str(hdr.get("message", ""))[:300] or "no reason given"
            self.draining = True
            if self._on_refused is not None:
                self._on_refused(self.refusal)
            if self._on_draining is not None:
                self._on_draining(self.address)
            log.warning(
                "callscope: provider %s refused the connection: %s", self.address, self.refusal
            )

    def on_closed(self, exc: Exception | None) -> None:
        if self.refusal:  # nothing sent on a refused link ran: safe to try elsewhere
            reason = f"provider {self.address} refused the connection: {self.refusal}"
        else:
            reason = f"connection to {self.address} lost" + (f": {exc}" if exc else "")
        if self.pending:
            pending, self.pending = self.pending, {}
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(UnavailableError(reason))
        if not self.hello.done():
            self.hello.set_exception(UnavailableError(reason))
            self.hello.exception()  # mark retrieved: nobody may be waiting


class Channel:
    """A reconnecting, multiplexed link to one provider address."""

    def __init__(
        self,
        address: str,
        *,
        ssl: _ssl.SSLContext | None = None,
        token: str | None = None,
        codec: Codec | None = None,
        limits: Limits = DEFAULT_LIMITS,
        heartbeat: Heartbeat | None = None,
        connect_timeout: float = 3.0,
        backoff: Backoff | None = None,
        on_trouble: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self._on_trouble = on_trouble  # told the address when a connect fails or a link drains
        self.host, self.port = parse_address(address)
        self._ssl = ssl
        self._token = token
        self._codec = codec or get_codec("msgpack")
        self._limits = limits
        self._heartbeat = heartbeat or Heartbeat()
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self.conn: ClientConnection | None = None
        self._closing: ClientConnection | None = None  # closed by close(), not yet gone
        self._connecting: asyncio.Future[ClientConnection] | None = None
        self._failures = 0
        self._refusals = 0
        self._retry_at = 0.0
        self._last_error: RpcError | None = None

    @property
    def healthy(self) -> bool:
        """A live link that is not draining (nothing to skip)."""
        conn = self.conn
        return conn is not None and not conn.closed and not conn.draining

    @property
    def available(self) -> bool:
        """False while a reconnect is backing off or the provider said it is closing."""
        conn = self.conn
        if conn is not None and not conn.closed:
            return not conn.draining
        return asyncio.get_running_loop().time() >= self._retry_at

    async def connection(self) -> ClientConnection:
        conn = self.conn
        if conn is not None and not conn.closed and not conn.draining:
            return conn
        if self._connecting is None:
            loop = asyncio.get_running_loop()
            if loop.time() < self._retry_at and self._last_error is not None:
                wait = self._retry_at - loop.time()
                raise type(self._last_error)(
                    f"{self._last_error.message} (next reconnect in {wait:.2f}s)"
                )
            self._connecting = loop.create_task(self._connect())
        try:
            return await asyncio.shield(self._connecting)
        finally:
            if self._connecting is not None and self._connecting.done():
                self._connecting = None

    async def _connect(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: ClientConnection(
                        limits=self._limits,
                        heartbeat=self._heartbeat,
                        address=self.address,
                        on_draining=self._on_trouble,
                        on_refused=self._refused,
                    ),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                )
                if self._token is not None:
                    conn.write(
                        pack_frame(
                            EVENT,
                            0,
                            self._codec.id,
                            0,
                            self._codec.encode({H_EVENT: "hello", "token": self._token}),
                            b"",
                        )
                    )
                    reply = await conn.hello
                    if not reply.get("ok"):
                        conn.close()
                        raise UnauthenticatedError(
                            f"{self.address} refused the token: {reply.get('message', '')}"
                        )
        except (OSError, asyncio.TimeoutError, _ssl.SSLError, RpcError) as exc:
            self._failures += 1
            self._retry_at = loop.time() + self._backoff.delay(self._failures)
            if isinstance(exc, RpcError):
                err = exc
            elif isinstance(exc, asyncio.TimeoutError):
                err = TimeoutError(f"connecting to {self.address} timed out")
            else:
                err = UnavailableError(f"cannot connect to {self.address}: {exc}")
            self._last_error = err
            if self._on_trouble is not None:
                self._on_trouble(self.address)
            raise err from None
        self._failures = 0
        self._retry_at = 0.0
        self._last_error = None
        if self.conn is None or not self.conn.refusal:
            self._refusals = 0
        self.conn = conn
        return conn

    def _refused(self, reason: str) -> None:
        """The provider refused the link (connection control): back off as from a failed
        connect, so a capped provider is not dialled again on every call."""
        self._refusals += 1  # in a row: the delay grows as for failed connects
        self._retry_at = asyncio.get_running_loop().time() + self._backoff.delay(self._refusals)
        self._last_error = UnavailableError(
            f"provider {self.address} refused the connection: {reason}"
        )

    def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self.conn is not None:
            self.conn.close()
            self._closing = self.conn
            self.conn = None

    async def wait_closed(self, grace: float = 1.0) -> None:
        """Until the closed connection's transport is gone. A TLS close waits for the peer's
        close_notify; past ``grace`` it is aborted, so the loop can be closed after this."""
        conn, self._closing = self._closing, None
        if conn is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(conn.closed_future), grace)
        except asyncio.TimeoutError:
            conn.abort()
            await conn.closed_future
