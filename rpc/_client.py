"""The consumer side on asyncio: proxies and every call model.

Each call builds an :class:`Invocation`, picks a provider (or the in-process
export, injvm), and runs the client interceptor chain around the send. The
sync :class:`~rpc.Client` is a facade over this on a loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import ssl as _ssl
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from . import _injvm
from ._balance import get_balancer
from ._channel import Backoff, Channel
from ._codec import get_codec
from ._connection import Heartbeat
from ._convert import Converter, converter_for, is_identity
from ._deadlines import Deadlines
from ._defaults import global_interceptors
from ._directory import Directory, Provider, StaticDirectory
from ._errors import CancelledError, ProtocolError, RpcError, TimeoutError, UnavailableError
from ._frame import (
    DEFAULT_LIMITS,
    FLAG_ERROR,
    H_GROUP,
    H_METHOD,
    H_SERVICE,
    H_TIMEOUT_MS,
    H_VERSION,
    Limits,
)
from ._invocation import CallNext, Interceptor, Invocation, build_chain

__all__ = ["AsyncClient", "Call", "CallOptions", "Outcome"]

T = TypeVar("T")
_NO_TIMEOUT = -1.0


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-proxy settings: which version and group, how long to wait, what to attach."""

    version: str = ""
    group: str = ""
    timeout: float | None = _NO_TIMEOUT  # seconds; -1 means the client's default
    attachments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """One call in a :meth:`AsyncClient.parallel` batch."""

    service: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    options: CallOptions = CallOptions()


@dataclass(slots=True)
class Outcome:
    """What one provider answered in a broadcast."""

    peer: str
    value: Any = None
    error: RpcError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


def _as_directory(providers: Directory | Sequence[str] | str | None) -> Directory:
    if providers is None:
        return StaticDirectory(())
    if isinstance(providers, str):
        return StaticDirectory([a.strip() for a in providers.split(",") if a.strip()])
    if isinstance(providers, Directory):
        return providers
    return StaticDirectory(providers)


class AsyncClient:
    """Calls services on providers found in a :class:`Directory` (or a list of addresses).

    ``timeout`` (seconds, ``None`` for none) is the default per call and travels
    to the provider as a deadline. ``injvm`` sends calls to services exported in
    this process straight to them (still through both interceptor chains).
    """

    def __init__(
        self,
        providers: Directory | Sequence[str] | str | None = None,
        *,
        codec: str = "msgpack",
        timeout: float | None = 5.0,
        interceptors: Sequence[Interceptor] = (),
        balancer: str = "round_robin",
        token: str | None = None,
        ssl: _ssl.SSLContext | None = None,
        limits: Limits = DEFAULT_LIMITS,
        heartbeat: Heartbeat | None = None,
        connect_timeout: float = 3.0,
        backoff: Backoff | None = None,
        injvm: bool = True,
    ) -> None:
        self.directory = _as_directory(providers)
        self.codec = get_codec(codec)
        self.timeout = timeout
        self.injvm = injvm
        self._balancer = get_balancer(balancer)
        self._channel_options: dict[str, Any] = {
            "ssl": ssl,
            "token": token,
            "codec": self.codec,
            "limits": limits,
            "heartbeat": heartbeat,
            "connect_timeout": connect_timeout,
            "backoff": backoff,
        }
        self._channels: dict[str, Channel] = {}
        self._headers: dict[tuple[Any, ...], bytes] = {}  # encoded request headers, bounded
        self._deadlines: Deadlines | None = None
        self._interceptors = global_interceptors("client") + list(interceptors)
        self._chain: CallNext = build_chain(self._interceptors, self._send)
        self._closed = False

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append an interceptor (innermost); the chain is rebuilt once, here."""
        self._interceptors.append(interceptor)
        self._chain = build_chain(self._interceptors, self._send)

    # -- proxies ----------------------------------------------------------
    @overload
    def proxy(self, service: str, iface: type[T], **options: Any) -> T: ...
    @overload
    def proxy(self, service: str, iface: None = None, **options: Any) -> Any: ...
    def proxy(self, service: str, iface: type[Any] | None = None, **options: Any) -> Any:
        """A proxy whose methods are coroutines; typed by ``iface`` (a Protocol) if given.

        Options: ``version``, ``group``, ``timeout``, ``attachments``.
        """
        return AsyncProxy(self, service, iface, CallOptions(**options))

    async def generic(self, service: str, method: str, *args: Any, **options: Any) -> Any:
        """Call without an interface; arguments and result are plain data."""
        return await self.invoke(service, method, args, None, CallOptions(**options))

    # -- the call path ----------------------------------------------------
    async def invoke(
        self,
        service: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: CallOptions = CallOptions(),
        *,
        oneway: bool = False,
        peer: str | None = None,
    ) -> Any:
        """One call through the chain; ``peer`` pins the provider (broadcast, forking)."""
        return await self.start(service, method, args, kwargs, options, oneway=oneway, peer=peer)

    def start(
        self,
        service: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: CallOptions = CallOptions(),
        *,
        oneway: bool = False,
        peer: str | None = None,
    ) -> Awaitable[Any]:
        """Like :meth:`invoke` minus one coroutine layer: the awaitable of the chain."""
        try:
            if self._closed:
                raise UnavailableError("client is closed")
            timeout = self.timeout if options.timeout == _NO_TIMEOUT else options.timeout
            inv = Invocation(
                service,
                method,
                args,
                kwargs,
                version=options.version,
                group=options.group,
                attachments=dict(options.attachments) if options.attachments else {},
                deadline=None if timeout is None else time.monotonic() + timeout,
                oneway=oneway,
            )
            inv.peer = peer if peer is not None else self._select(inv)
            return self._chain(inv)
        except Exception as exc:
            return _raise(exc)

    def _select(self, inv: Invocation) -> str:
        if self.injvm and _injvm.exported() and _injvm.find(inv.service, inv.version, inv.group):
            return "injvm"
        providers = self.directory.providers(inv.service, inv.version, inv.group)
        if not providers:
            return ""
        if len(providers) > 1:
            usable = [p for p in providers if self._usable(p)]
            providers = usable or providers
        return self._balancer.select(providers, inv).address

    def _usable(self, provider: Provider) -> bool:
        channel = self._channels.get(provider.address)
        return channel is None or channel.available

    def _channel(self, address: str) -> Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = Channel(address, **self._channel_options)
        return channel

    async def _send(self, inv: Invocation) -> Any:
        """The innermost step: deliver over the socket (or in-process) and decode."""
        peer = inv.peer
        if peer == "injvm":
            return await self._send_local(inv)
        if not peer:
            raise UnavailableError(f"no provider for {inv.service!r} {inv.version!r} {inv.group!r}")
        channel = self._channels.get(peer) or self._channel(peer)
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
        if remaining is None:
            flags, codec_id, data = await fut
        else:
            deadlines = self._deadlines or self._start_deadlines()
            key = deadlines.add(conn._loop.time() + remaining, (conn, rid, inv))
            try:
                flags, codec_id, data = await fut
            finally:
                deadlines.discard(key)
        try:
            decoded = (codec if codec_id == codec.id else get_codec(codec_id)).decode(data)
        except Exception as exc:
            raise ProtocolError(f"undecodable response from {peer}: {exc}") from None
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
        if len(self._headers) >= 512:
            self._headers.clear()
        self._headers[key] = encoded
        return encoded

    def _start_deadlines(self) -> Deadlines:
        self._deadlines = Deadlines(asyncio.get_running_loop(), _expire)
        return self._deadlines

    async def _send_local(self, inv: Invocation) -> Any:
        server = _injvm.find(inv.service, inv.version, inv.group)
        if server is None or server.loop is None:
            raise UnavailableError(f"in-process provider of {inv.service!r} is gone")
        if inv.oneway:
            _spawn_local(server, inv)
            return None
        if server.loop is asyncio.get_running_loop():
            return await server.invoke_local(inv)
        future = asyncio.run_coroutine_threadsafe(server.invoke_local(inv), server.loop)
        return await asyncio.wrap_future(future)

    # -- call models beyond one request -----------------------------------
    async def parallel(
        self, calls: Iterable[Call], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Run several calls at once; results in the order given."""
        return await asyncio.gather(
            *(self.invoke(c.service, c.method, c.args, c.kwargs, c.options) for c in calls),
            return_exceptions=return_exceptions,
        )

    async def broadcast(
        self, service: str, method: str, *args: Any, **options: Any
    ) -> list[Outcome]:
        """Call every provider of ``service``; one :class:`Outcome` each."""
        opts = CallOptions(**options)
        providers = self.directory.providers(service, opts.version, opts.group)
        if not providers:
            raise UnavailableError(f"no provider for {service!r} to broadcast to")

        async def one(address: str) -> Outcome:
            try:
                return Outcome(
                    address, await self.invoke(service, method, args, None, opts, peer=address)
                )
            except RpcError as err:
                return Outcome(address, error=err)

        return list(await asyncio.gather(*(one(p.address) for p in providers)))

    async def forking(
        self, service: str, method: str, *args: Any, forks: int = 2, **options: Any
    ) -> Any:
        """Send to ``forks`` providers at once; the first success wins, the rest are cancelled."""
        opts = CallOptions(**options)
        providers = list(self.directory.providers(service, opts.version, opts.group))
        if not providers:
            raise UnavailableError(f"no provider for {service!r}")
        chosen = random.sample(providers, min(max(forks, 1), len(providers)))
        tasks = [
            asyncio.ensure_future(self.invoke(service, method, args, None, opts, peer=p.address))
            for p in chosen
        ]
        last_error: BaseException | None = None
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    return await next_done
                except RpcError as err:
                    last_error = err
        finally:
            for task in tasks:
                task.cancel()
        assert last_error is not None
        raise last_error

    # -- lifecycle ----------------------------------------------------------
    async def close(self) -> None:
        self._closed = True
        if self._deadlines is not None:
            self._deadlines.close()
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()
        await asyncio.gather(*(channel.wait_closed() for channel in channels))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _raise(exc: BaseException) -> Any:
    raise exc


async def _converted(call: Awaitable[Any], convert: Converter) -> Any:
    return convert(await call)


def _expire(item: tuple[Any, int, Invocation]) -> None:
    conn, rid, inv = item
    conn.expire(rid, TimeoutError(f"{inv.service}/{inv.method} timed out waiting for {inv.peer}"))


def _spawn_local(server: Any, inv: Invocation) -> None:
    async def run() -> None:
        with contextlib.suppress(RpcError):  # oneway: nobody to tell
            await server.invoke_local(inv)

    if server.loop is asyncio.get_running_loop():
        task = server.loop.create_task(run())
        _background.add(task)
        task.add_done_callback(_background.discard)
    else:
        asyncio.run_coroutine_threadsafe(run(), server.loop)


_background: set[asyncio.Task[Any]] = set()


def return_converter(iface: type[Any] | None, method: str) -> Converter | None:
    """The converter for ``iface.method``'s return hint, or ``None`` when none is needed."""
    if iface is None:
        return None
    fn = getattr(iface, method, None)
    if fn is None or not callable(fn):
        raise AttributeError(f"{iface.__qualname__} has no method {method!r}")
    try:
        hint = typing.get_type_hints(fn).get("return", Any)
    except Exception:
        return None
    conv = converter_for(hint)
    return None if is_identity(conv) else conv


class MethodRef:
    """What a proxy's method knows: where to call and how to convert the result."""

    __slots__ = ("_client", "_convert", "_method", "_options", "_service")

    def __init__(
        self,
        client: Any,
        service: str,
        method: str,
        options: CallOptions,
        convert: Converter | None,
    ) -> None:
        self._client = client
        self._service = service
        self._method = method
        self._options = options
        self._convert = convert


class BaseProxy:
    """Attribute access gives a ``method_class`` instance, created once per name."""

    method_class: type[MethodRef] = MethodRef

    def __init__(
        self, client: Any, service: str, iface: type[Any] | None, options: CallOptions
    ) -> None:
        self._client = client
        self._service = service
        self._iface = iface
        self._options = options

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        method = self.method_class(
            self._client, self._service, name, self._options, return_converter(self._iface, name)
        )
        setattr(self, name, method)
        return method

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._service!r}>"


class AsyncMethod(MethodRef):
    """One remote method: ``await m(...)``, ``m.oneway(...)``, ``m.callback(..., on_done=)``."""

    __slots__ = ()
    _client: AsyncClient

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        call = self._client.start(self._service, self._method, args, kwargs or None, self._options)
        return call if self._convert is None else _converted(call, self._convert)

    async def oneway(self, *args: Any, **kwargs: Any) -> None:
        """Fire and forget: returns once the request is written; no response comes back."""
        await self._client.invoke(
            self._service, self._method, args, kwargs or None, self._options, oneway=True
        )

    def future(self, *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        """Start the call now; await the task later."""
        return asyncio.ensure_future(self(*args, **kwargs))

    def callback(
        self, *args: Any, on_done: Callable[[Any, RpcError | None], None], **kwargs: Any
    ) -> asyncio.Task[Any]:
        """Start the call; ``on_done(result, error)`` runs on the loop when it ends."""
        task = self.future(*args, **kwargs)
        task.add_done_callback(completion_callback(on_done))
        return task


def completion_callback(on_done: Callable[[Any, RpcError | None], None]) -> Callable[[Any], None]:
    """Adapt ``on_done(result, error)`` to a done-callback of an asyncio or concurrent future."""

    def finished(fut: Any) -> None:
        if fut.cancelled():
            on_done(None, CancelledError("call cancelled"))
            return
        exc = fut.exception()
        if exc is None:
            on_done(fut.result(), None)
        else:
            on_done(None, exc if isinstance(exc, RpcError) else RpcError(str(exc)))

    return finished


class AsyncProxy(BaseProxy):
    """A proxy whose methods are coroutines."""

    method_class = AsyncMethod
