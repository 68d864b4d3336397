"""One client's link to a server: admission, decoding within limits, dispatch, answers.

The server (``_server``) owns what all links share: the services, the in-flight
count, the deadline timer, the decoder thread and the partial-frame budget.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from ._codec import Codec, get_codec
from ._connection import Connection
from ._errors import (
    BadRequestError,
    InternalError,
    PermissionDeniedError,
    ProtocolError,
    RpcError,
    TimeoutError,
    UnauthenticatedError,
    UnavailableError,
)
from ._frame import (
    EVENT,
    FIXED_HEADER,
    FLAG_ERROR,
    H_ATTACHMENTS,
    H_EVENT,
    H_GROUP,
    H_METHOD,
    H_SERVICE,
    H_TIMEOUT_MS,
    H_VERSION,
    MAGIC,
    ONEWAY,
    REQUEST,
    RESPONSE,
    VERSION,
    pack_frame,
)
from ._intake import ON_LOOP
from ._invocation import Invocation
from .flow._concurrency import NO_DEFAULT, Shed
from .flow._gate import gate_failed

if TYPE_CHECKING:
    from ._server import Server

__all__ = ["ServerConnection", "encode_event", "error_of", "expire"]

log = logging.getLogger("callscope.rpc")


def _remote_type(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def error_of(exc: BaseException) -> RpcError:
    """Map whatever a handler raised to the wire error the caller will see."""
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return TimeoutError("deadline exceeded on the provider")
    if isinstance(exc, asyncio.CancelledError):
        return UnavailableError("the provider cancelled the call (shutting down)")
    return InternalError(str(exc), remote_type=_remote_type(exc))


def expire(item: tuple[asyncio.Task[None], ServerConnection, Codec, int, bool, Any, Any]) -> None:
    """A request's deadline came: cancel its handler (which then answers TIMEOUT).

    A task cancelled before its first step never runs its body, so the ``finally``
    that frees the in-flight slot would never run: such a request ends here.
    """
    task, conn, codec, rid, oneway, head, held = item
    conn.server._expired += 1
    coro = cast(Coroutine[Any, Any, None], task.get_coro())  # _handle's
    not_started = inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    task.cancel()
    if not_started:
        conn.expired_before_start(codec, rid, oneway, head, held)


def encode_event(header: dict[str, Any]) -> bytes:
    codec = get_codec("msgpack")
    return pack_frame(EVENT, 0, codec.id, 0, codec.encode(header), b"")


class ServerConnection(Connection):
    """One client's link to the server."""

    def __init__(self, server: Server) -> None:
        super().__init__(limits=server.limits, heartbeat=server.heartbeat)
        self.server = server
        self.principal: Any = None
        self.authenticated = not server.requires_auth
        self._headers: dict[tuple[int, bytes], tuple[Any, ...]] = {}  # parsed, bounded
        self.partial = 0  # bytes of a frame still arriving (see Arrivals)
        self.address = ""  # the client's host, as connection control counts it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        address = self.peer.rpartition(":")[0] or self.peer
        refusal = server.connection_limits.admit(address)
        if refusal is not None:  # beyond a cap: say why, then go; other links are untouched
            self.write(
                encode_event({H_EVENT: "refused", "code": "RESOURCE_EXHAUSTED", "message": refusal})
            )
            self.close()
            return
        self.address = address
        server._connections.add(self)

    def on_closed(self, exc: Exception | None) -> None:
        if self in self.server._connections:
            self.server._connections.discard(self)
            self.server.connection_limits.release(self.address)
        self.server.arrivals.release(self)

    def partial_frame(self, buffered: int, fresh: bool) -> None:
        self.server.arrivals.update(self, buffered, fresh, self._loop.time())

    def may_read(self) -> bool:
        return not self._write_paused and self._backlog is None

    def pause_writing(self) -> None:
        # The client is not reading our responses: stop reading its requests.
        super().pause_writing()
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.server.arrivals.restart(self, self._loop.time())
        if self.transport is not None and not self.closed and self.may_read():
            self.transport.resume_reading()

    def frame_received(
        self, ftype: int, flags: int, codec_id: int, rid: int, header: bytes, body: bytes
    ) -> None:
        if ftype in (REQUEST, ONEWAY):
            self._request(ftype == ONEWAY, codec_id, rid, header, body)
        elif ftype == EVENT:
            self._event(codec_id, header)
        else:
            raise ProtocolError(f"unexpected frame type {ftype} from a client")

    def _decode_header(self, codec: Codec, header: bytes) -> dict[str, Any]:
        """The header map; undecodable closes the link, beyond the limits is BAD_REQUEST."""
        hdr = self.server.decoder.now(codec, header, "header", ProtocolError) if header else {}
        if not isinstance(hdr, dict):
            raise ProtocolError("header is not a map")
        return hdr

    def _event(self, codec_id: int, header: bytes) -> None:
        try:
            hdr = self._decode_header(self.server.codec(codec_id), header)
        except BadRequestError as err:  # no call to answer: the link goes
            raise ProtocolError(err.message) from None
        if hdr.get(H_EVENT) != "hello":
            return  # unknown events are ignored: newer peers may send more
        token = hdr.get("token")
        principal = None
        if self.server._authenticator is not None and isinstance(token, str):
            try:
                principal = self.server._authenticator(token)
            except Exception:
                log.exception("callscope: authenticator raised; refusing the token")
        if self.server._authenticator is None:
            self.write(encode_event({H_EVENT: "hello", "ok": True}))
            return
        if principal is None:
            self.write(encode_event({H_EVENT: "hello", "ok": False, "message": "invalid token"}))
            log.warning("callscope: refused a connection from %s: invalid token", self.peer)
            self.close()
            return
        self.principal = principal
        self.authenticated = True
        self.write(encode_event({H_EVENT: "hello", "ok": True}))

    def _request(self, oneway: bool, codec_id: int, rid: int, header: bytes, body: bytes) -> None:
        server = self.server
        codec = server._codecs.get(codec_id) or server.codec(codec_id)
        key = (codec_id, header)
        parsed = self._headers.get(key)
        bad: BadRequestError | None = None
        if parsed is None:
            try:  # a ProtocolError propagates: it closes the link
                parsed = self._parse_header(codec, header)
            except BadRequestError as err:
                bad = err
            else:
                if parsed[5] is None and parsed[6]:  # the same bytes mean the same call
                    if len(self._headers) >= 256:
                        self._headers.clear()
                    self._headers[key] = parsed
        try:
            if not self.authenticated:
                raise UnauthenticatedError("this provider requires a token (handshake first)")
            if bad is not None:
                raise bad
            if server.closing:
                raise UnavailableError("provider is shutting down")
            if server._authorizer is not None:
                self._authorize(parsed[0], parsed[1])  # type: ignore[index]
            gate = None
            try:  # admission: gates (quotas, tiers...) in order, then the bulkhead's room
                for gate in server.gates:  # (admit_all, inlined: this runs for every call)
                    gate.admit(parsed[0], parsed[1], self.principal)  # type: ignore[index]
                held = server.concurrency.admit(parsed[6])  # type: ignore[index]
            except RpcError:
                server.rejected(parsed[0], parsed[1])  # type: ignore[index]
                raise
            except Exception as exc:  # a broken gate refuses the call; the link stays
                server.rejected(parsed[0], parsed[1])  # type: ignore[index]
                raise gate_failed(gate, exc) from None
        except RpcError as err:
            if not oneway:
                if err.__class__ is Shed and err.value is not NO_DEFAULT:  # type: ignore[attr-defined]
                    self._reply_value(codec, rid, err.value)  # type: ignore[attr-defined]
                else:
                    self._reply_error(codec, rid, err)
            return
        assert parsed is not None
        loop = self._loop
        deadline_key = [0]
        task = loop.create_task(self._handle(codec, rid, oneway, parsed, body, deadline_key, held))
        timeout_ms = parsed[4]
        if timeout_ms is not None:
            # One timer for all calls (see _deadlines); the method turns the
            # cancellation into TIMEOUT (see Server._invoke_method).
            deadlines = server._deadlines  # set while serving
            deadline_key[0] = deadlines.add(  # type: ignore[union-attr]
                loop.time() + timeout_ms / 1000, (task, self, codec, rid, oneway, parsed[6], held)
            )

    def _authorize(self, service: str, method: str) -> None:
        authorizer = self.server._authorizer
        assert authorizer is not None
        try:
            allowed = authorizer(self.principal, service, method)
        except Exception:
            log.exception("callscope: authorizer raised; refusing the call")
            allowed = False
        if not allowed:
            raise PermissionDeniedError(f"{service}/{method} is not allowed for this caller")

    def _parse_header(self, codec: Codec, header: bytes) -> tuple[Any, ...]:
        """Validate a request header once: (service, method, version, group, timeout,
        attachments, the service's bulkhead if the server has that method, else None).

        A header that cannot be decoded closes the link (PROTOCOL_ERROR); a decodable
        one with wrong fields is answered with BAD_REQUEST.
        """
        hdr = self._decode_header(codec, header)
        attachments = hdr.get(H_ATTACHMENTS)
        if attachments is not None and (
            not isinstance(attachments, dict) or len(attachments) > self.limits.max_attachments
        ):
            raise BadRequestError(
                f"attachments must be a map of at most {self.limits.max_attachments} entries"
            )
        service = hdr.get(H_SERVICE)
        method = hdr.get(H_METHOD)
        if not isinstance(service, str) or not isinstance(method, str):
            raise BadRequestError("request header lacks service or method")
        version = hdr.get(H_VERSION, "")
        group = hdr.get(H_GROUP, "")
        if not isinstance(version, str) or not isinstance(group, str):
            raise BadRequestError("version and group must be strings")
        timeout_ms = hdr.get(H_TIMEOUT_MS)
        if timeout_ms is not None and (
            not isinstance(timeout_ms, (int, float)) or not 0 <= timeout_ms < 1e12
        ):
            raise BadRequestError("timeout must be a non-negative number of ms")
        found = self.server._finds(service, method, version, group)
        return (service, method, version, group, timeout_ms, attachments, found)

    async def _handle(
        self,
        codec: Codec,
        rid: int,
        oneway: bool,
        parsed: tuple[Any, ...],
        body: bytes,
        deadline_key: list[int],
        slot: bool | None,
    ) -> None:
        server = self.server
        service, method, version, group, timeout_ms, attachments, found = parsed
        try:
            if not slot:  # queued behind the service's bulkhead
                slot = None  # a cancelled wait gives its queue place back itself
                await found.wait()
                slot = True
            if not found or not body:  # nothing to decode for a call that cannot run:
                payload = []  # the chain answers NOT_FOUND (interceptors still see the call)
            elif len(body) <= ON_LOOP:
                payload = server.decoder.now(codec, body)
            else:  # it counts against Limits.max_buffered until decoded
                held = len(body)
                server.arrivals.held += held
                try:
                    payload = await server.decoder.later(codec, body)
                finally:
                    server.arrivals.held -= held
                body = b""  # a big body is not kept while the call runs
            if payload.__class__ is not list or len(payload) > 3:
                raise BadRequestError(
                    "body must be [args], [args, kwargs] or [args, kwargs, attachments]"
                )
            args = payload[0] if payload else []
            kwargs = payload[1] if len(payload) > 1 else None
            if not isinstance(args, list) or not (kwargs is None or isinstance(kwargs, dict)):
                raise BadRequestError("args must be a list and kwargs a map")
            if len(payload) == 3:
                attachments = self._body_attachments(payload[2], attachments)
            inv = Invocation(
                service,
                method,
                args,
                kwargs,
                version=version,
                group=group,
                attachments=attachments,
                deadline=None if timeout_ms is None else time.monotonic() + timeout_ms / 1000,
                peer=self.peer,
                role="server",
                oneway=oneway,
                principal=self.principal,
                local=server.address,
            )
            result = await server._chain(inv)
            if not oneway:
                try:
                    data = codec.encode(result)
                except RpcError as exc:
                    raise RpcError(f"result cannot be encoded: {exc.message}") from None
                self.write(
                    FIXED_HEADER.pack(MAGIC, VERSION, RESPONSE, 0, codec.id, rid, 0, len(data))
                    + data
                )
        except (Exception, asyncio.CancelledError) as exc:
            failure: BaseException = exc
            if isinstance(exc, asyncio.CancelledError) and not server.closing:
                failure = TimeoutError("deadline exceeded on the provider")
            err = error_of(failure)
            if not isinstance(failure, RpcError):
                log.debug("callscope: %s/%s raised", service, method, exc_info=True)
            if not oneway:
                self._reply_error(codec, rid, err)
        finally:
            if deadline_key[0]:
                server._deadlines.discard(deadline_key[0])  # type: ignore[union-attr]
            server._end(found, slot)

    def expired_before_start(
        self, codec: Codec, rid: int, oneway: bool, head: Any, held: bool | None
    ) -> None:
        """End a request whose deadline passed before its handler ran (see ``expire``):
        it frees the slot or queue place it was admitted with."""
        self.server._end(head, held)
        if not oneway:
            self._reply_error(codec, rid, TimeoutError("deadline exceeded on the provider"))

    def _body_attachments(self, carried: Any, in_header: dict[str, Any] | None) -> dict[str, Any]:
        """Attachments ride at the end of the body (as Dubbo's do): the header of a traced
        call then stays the same bytes from call to call, and both sides reuse its parse."""
        if carried.__class__ is not dict or len(carried) > self.limits.max_attachments:
            raise BadRequestError(
                f"attachments must be a map of at most {self.limits.max_attachments} entries"
            )
        return {**in_header, **carried} if in_header else carried

    def _reply_value(self, codec: Codec, rid: int, value: Any) -> None:
        """Answer a shed call with its service's configured default value."""
        data = codec.encode(value)
        self.write(
            FIXED_HEADER.pack(MAGIC, VERSION, RESPONSE, 0, codec.id, rid, 0, len(data)) + data
        )

    def _reply_error(self, codec: Codec, rid: int, err: RpcError) -> None:
        try:
            data = codec.encode(err.to_dict())
        except RpcError:
            data = codec.encode({"code": err.code, "message": repr(err.message), "type": None})
        self.write(
            FIXED_HEADER.pack(MAGIC, VERSION, RESPONSE, FLAG_ERROR, codec.id, rid, 0, len(data))
            + data
        )
