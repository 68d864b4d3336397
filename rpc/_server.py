"""The provider side: export services, accept connections, dispatch, drain on stop."""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import inspect
import logging
import ssl as _ssl
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from . import _injvm
from ._codec import Codec, get_codec
from ._connection import Connection, Heartbeat
from ._deadlines import Deadlines
from ._defaults import global_interceptors
from ._errors import (
    BadRequestError,
    BusyError,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
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
    Limits,
    pack_frame,
)
from ._intake import ON_LOOP, Arrivals, Decoder
from ._invocation import CallNext, Interceptor, Invocation, build_chain
from ._loop import run_until_signalled
from ._service import ExportedService, ServiceSpec, spec_of

__all__ = ["Server"]

log = logging.getLogger("callscope.rpc")

Authenticator = Callable[[str], Any]
Authorizer = Callable[[Any, str, str], bool]


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


class Server:
    """Serves exported services on one TCP port.

    Sync methods run in a bounded thread pool (``workers``); at most
    ``max_inflight`` calls run at once, beyond which callers get BUSY.
    ``authenticator`` (or the ``tokens`` map) turns a client's token into a
    principal, or ``None`` to refuse it; ``authorizer(principal, service, method)``
    says whether that principal may make that call, judged from the header before
    the body is read (PERMISSION_DENIED if not). :meth:`stop` drains: it stops
    accepting, tells clients, waits for in-flight calls, then closes.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        interceptors: Sequence[Interceptor] = (),
        workers: int = 32,
        max_inflight: int = 10_000,
        authenticator: Authenticator | None = None,
        authorizer: Authorizer | None = None,
        tokens: Mapping[str, Any] | None = None,
        ssl: _ssl.SSLContext | None = None,
        limits: Limits = DEFAULT_LIMITS,
        heartbeat: Heartbeat | None = None,
        injvm: bool = True,
    ) -> None:
        if authenticator is not None and tokens is not None:
            raise ValueError("give either an authenticator or a tokens map, not both")
        if tokens is not None:
            table = dict(tokens)
            authenticator = table.get
        self.host = host
        self.port = port
        self.limits = limits
        self.heartbeat = heartbeat or Heartbeat()
        self.max_inflight = max_inflight
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._ssl = ssl
        self._injvm = injvm
        self._services: dict[tuple[str, str, str], ExportedService] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="callscope-worker")
        self._interceptors = global_interceptors("server") + list(interceptors)
        self._chain: CallNext = build_chain(self._interceptors, self._invoke_method)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[ServerConnection] = set()
        self._inflight = 0
        self._expired = 0
        self._drained: asyncio.Event | None = None
        self.closing = False
        self._codecs: dict[int, Codec] = {}
        self.decoder = Decoder(limits)
        self.arrivals = Arrivals(limits)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: Deadlines | None = None

    # -- configuration ----------------------------------------------------
    @property
    def requires_auth(self) -> bool:
        return self._authenticator is not None

    @property
    def address(self) -> str:
        """``host:port`` actually bound (the real port when started with port 0)."""
        return f"{self.host}:{self.port}"

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def expired(self) -> int:
        """Calls whose deadline fired on the provider (each answered TIMEOUT unless oneway)."""
        return self._expired

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append an interceptor (innermost); the chain is rebuilt once, here."""
        self._interceptors.append(interceptor)
        self._chain = build_chain(self._interceptors, self._invoke_method)

    def export(
        self,
        instance: Any,
        *,
        name: str | None = None,
        version: str | None = None,
        group: str | None = None,
    ) -> ServiceSpec:
        """Export ``instance``; identity from its ``@service`` mark unless given here."""
        marked = spec_of(instance)
        spec = ServiceSpec(
            name or (marked.name if marked else type(instance).__name__),
            version if version is not None else (marked.version if marked else ""),
            group if group is not None else (marked.group if marked else ""),
        )
        if spec.key in self._services:
            raise ValueError(
                f"service {spec.name!r} {spec.version!r} {spec.group!r} already exported"
            )
        self._services[spec.key] = ExportedService(instance, spec)
        if self._injvm and self.loop is not None:
            _injvm.publish(spec.key, self)
        return spec

    def services(self) -> list[ServiceSpec]:
        return [s.spec for s in self._services.values()]

    # -- lifecycle --------------------------------------------------------
    async def start(self) -> Server:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ServerConnection(self),
            self.host,
            self.port,
            ssl=self._ssl,
            reuse_address=True,
            backlog=1024,
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.loop = loop
        self._deadlines = Deadlines(loop, _expire)
        self.arrivals.start(loop)
        if self._injvm:
            for key in self._services:
                _injvm.publish(key, self)
        log.info("callscope server listening on %s", self.address)
        return self

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, tell clients, drain in-flight calls (up to ``grace`` s), close."""
        if self.closing:
            return
        self.closing = True
        for key in self._services:
            _injvm.withdraw(key, self)
        if self._server is not None:
            self._server.close()
        event = _encode_event({H_EVENT: "closing"})
        for conn in list(self._connections):
            conn.write(event)
        if self._inflight:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), grace)
            except builtins.TimeoutError:
                log.warning(
                    "callscope: %d calls still running after %.1fs grace", self._inflight, grace
                )
        for conn in list(self._connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.decoder.close()
        self.arrivals.close()
        if self._deadlines is not None:
            self._deadlines.close()
        log.info("callscope server on %s stopped", self.address)

    def run(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then stop gracefully (a blocking helper).

        ``ready(address)`` is called once listening (e.g. to print the bound port). When
        the application has not configured :mod:`logging`, logs go to stderr at INFO
        (logger ``callscope.rpc``: where it listens, handlers' exceptions).
        """
        if not logging.getLogger().handlers:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
        run_until_signalled(
            self.start, self.stop, None if ready is None else lambda: ready(self.address)
        )

    # -- dispatch ---------------------------------------------------------
    def _finds(self, service: str, method: str, version: str, group: str) -> bool:
        """Whether a call could run here, judged from its header alone."""
        try:
            return method in self._lookup(service, version, group).methods
        except NotFoundError:
            return False

    def _lookup(self, service: str, version: str, group: str) -> ExportedService:
        exported = self._services.get((service, version, group))
        if exported is None and version in ("", "*"):
            for candidate in self._services.values():
                if candidate.spec.name == service and candidate.spec.group == group:
                    return candidate
        if exported is None:
            raise NotFoundError(f"no service {service!r} version {version!r} group {group!r}")
        return exported

    async def _invoke_method(self, inv: Invocation) -> Any:
        """The innermost step: find the method, bind arguments, run it within the deadline.

        Whatever the method raises reaches the interceptors as an :class:`RpcError`.
        """
        exported = self._lookup(inv.service, inv.version, inv.group)
        method = exported.methods.get(inv.method)
        if method is None:
            raise NotFoundError(f"service {inv.service!r} has no method {inv.method!r}")
        args = method.bind(inv.args, inv.kwargs)
        kwargs = inv.kwargs or {}
        try:
            if method.is_async:
                call = method.fn(*args, **kwargs)
            else:
                # The worker thread runs in the caller's context, so the trace (and any
                # other contextvar) follows the call into a sync method.
                call = asyncio.get_running_loop().run_in_executor(
                    self._pool,
                    contextvars.copy_context().run,
                    _run_sync,
                    method.fn,
                    args,
                    kwargs,
                    inv.deadline,
                )
            return await call
        except RpcError:
            raise
        except asyncio.CancelledError:
            if inv.deadline is not None and time.monotonic() >= inv.deadline:
                raise TimeoutError("deadline exceeded on the provider") from None
            raise
        except Exception as exc:
            tp = inv.attachments.get("traceparent")
            trace = tp[3:35] if isinstance(tp, str) and len(tp) >= 35 else "-"
            log.error("%s/%s raised (trace %s)", inv.service, inv.method, trace, exc_info=exc)
            raise error_of(exc) from exc

    async def invoke_local(self, inv: Invocation) -> Any:
        """An in-process (injvm) call: the server chain and the method, no codec or socket."""
        if self.closing:
            raise UnavailableError("provider is shutting down")
        server_inv = Invocation(
            inv.service,
            inv.method,
            inv.args,
            inv.kwargs,
            version=inv.version,
            group=inv.group,
            attachments=dict(inv.attachments),
            deadline=inv.deadline,
            peer="injvm",
            role="server",
            oneway=inv.oneway,
            local=self.address,
        )
        self._begin()
        try:
            if inv.deadline is None:
                return await self._chain(server_inv)
            async with asyncio.timeout(inv.deadline - time.monotonic()):
                return await self._chain(server_inv)
        except Exception as exc:
            raise error_of(exc) from None
        finally:
            self._end()

    def _begin(self) -> None:
        if self._inflight >= self.max_inflight:
            raise BusyError(
                f"provider has {self._inflight} calls in flight (limit {self.max_inflight})"
            )
        self._inflight += 1

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight == 0 and self._drained is not None:
            self._drained.set()

    def codec(self, codec_id: int) -> Codec:
        codec = self._codecs.get(codec_id)
        if codec is None:
            try:
                codec = get_codec(codec_id)
            except LookupError:
                raise ProtocolError(f"unknown codec id {codec_id}") from None
            self._codecs[codec_id] = codec
        return codec


def _expire(item: tuple[asyncio.Task[None], ServerConnection, Codec, int, bool]) -> None:
    """A request's deadline came: cancel its handler (which then answers TIMEOUT).

    A task cancelled before its first step never runs its body, so the ``finally``
    that frees the in-flight slot would never run: such a request ends here.
    """
    task, conn, codec, rid, oneway = item
    conn.server._expired += 1
    coro = cast(Coroutine[Any, Any, None], task.get_coro())  # _handle's
    not_started = inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    task.cancel()
    if not_started:
        conn.expired_before_start(codec, rid, oneway)


def _run_sync(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    deadline: float | None,
) -> Any:
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError("deadline passed while the call waited for a worker")
    return fn(*args, **(kwargs or {}))


def _encode_event(header: dict[str, Any]) -> bytes:
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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server._connections.add(self)

    def on_closed(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
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
            self.write(_encode_event({H_EVENT: "hello", "ok": True}))
            return
        if principal is None:
            self.write(_encode_event({H_EVENT: "hello", "ok": False, "message": "invalid token"}))
            log.warning("callscope: refused a connection from %s: invalid token", self.peer)
            self.close()
            return
        self.principal = principal
        self.authenticated = True
        self.write(_encode_event({H_EVENT: "hello", "ok": True}))

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
            server._begin()
        except RpcError as err:
            if not oneway:
                self._reply_error(codec, rid, err)
            return
        assert parsed is not None
        loop = self._loop
        deadline_key = [0]
        task = loop.create_task(self._handle(codec, rid, oneway, parsed, body, deadline_key))
        timeout_ms = parsed[4]
        if timeout_ms is not None:
            # One timer for all calls (see _deadlines); the method turns the
            # cancellation into TIMEOUT (see Server._invoke_method).
            deadlines = server._deadlines  # set while serving
            deadline_key[0] = deadlines.add(  # type: ignore[union-attr]
                loop.time() + timeout_ms / 1000, (task, self, codec, rid, oneway)
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
        attachments, whether the server has that method).

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
    ) -> None:
        server = self.server
        service, method, version, group, timeout_ms, attachments, found = parsed
        try:
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
            if isinstance(exc, asyncio.CancelledError) and not server.closing:
                exc = TimeoutError("deadline exceeded on the provider")
            err = error_of(exc)
            if not isinstance(exc, RpcError):
                log.debug("callscope: %s/%s raised", service, method, exc_info=True)
            if not oneway:
                self._reply_error(codec, rid, err)
        finally:
            if deadline_key[0]:
                server._deadlines.discard(deadline_key[0])  # type: ignore[union-attr]
            server._end()

    def expired_before_start(self, codec: Codec, rid: int, oneway: bool) -> None:
        """End a request whose deadline passed before its handler ran (see ``_expire``)."""
        self.server._end()
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

    def _reply_error(self, codec: Codec, rid: int, err: RpcError) -> None:
        try:
            data = codec.encode(err.to_dict())
        except RpcError:
            data = codec.encode({"code": err.code, "message": repr(err.message), "type": None})
        self.write(
            FIXED_HEADER.pack(MAGIC, VERSION, RESPONSE, FLAG_ERROR, codec.id, rid, 0, len(data))
            + data
        )
