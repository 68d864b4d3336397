"""The consumer side on asyncio: proxies, call options and the client's lifecycle.

Each call becomes an :class:`Invocation` handed to a cluster strategy, which
picks a provider per attempt and runs the client interceptor chain around an
invoker (``rpc.cluster``). The sync :class:`~rpc.Client` is a facade over this on
a loop thread.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from ._balance import get_balancer
from ._channel import Backoff, Channel
from ._codec import get_codec
from ._connection import Heartbeat
from ._convert import Converter, converter_for, is_identity
from ._defaults import global_interceptors
from ._directory import Directory, StaticDirectory
from ._errors import CancelledError, RpcError, UnavailableError
from ._frame import DEFAULT_LIMITS, Limits
from ._injvm import InjvmInvoker
from ._invocation import Interceptor, Invocation
from .cluster import (
    CLUSTERS,
    ClusterInvoker,
    ClusterStrategy,
    Forking,
    Invoker,
    Outcome,
    SocketInvoker,
)
from .config import LayeredConfig, declared_idempotent, read_file
from .routing import TAG, current_tag

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
    ``cluster`` names the fault-tolerance strategy (``failfast`` by default) and
    ``balancer`` the load balancer (``round_robin``); ``governance`` holds any other
    :class:`rpc.config.Settings` for every service (:meth:`configure` sets them per
    service and method). ``registry`` (taken from a ``RegistryDirectory`` when not
    given) is watched for weights, routing rules and settings; ``labels`` (zone, rack,
    room, host...) describe this consumer to routing rules (``consumer.zone``).
    ``config_file`` (JSON or TOML, ``{service or "*": settings}``) is this
    consumer's file layer, under what code sets. ``invoker`` replaces the socket:
    pass :class:`rpc.cluster.MockInvoker` to test without a network. ``connections``
    (1..64, default 1) is how many multiplexed links to keep to each provider, used
    in turn (to spread over a provider's ``--workers`` processes, or past one link's
    write buffer).
    """

    def __init__(
        self,
        providers: Directory | Sequence[str] | str | None = None,
        *,
        codec: str = "msgpack",
        timeout: float | None = 5.0,
        interceptors: Sequence[Interceptor] = (),
        balancer: str | None = None,
        cluster: str | None = None,
        governance: Mapping[str, Any] | None = None,
        token: str | None = None,
        ssl: _ssl.SSLContext | None = None,
        limits: Limits = DEFAULT_LIMITS,
        heartbeat: Heartbeat | None = None,
        connect_timeout: float = 3.0,
        backoff: Backoff | None = None,
        injvm: bool = True,
        invoker: Invoker | None = None,
        registry: Any = None,
        labels: Mapping[str, Any] | None = None,
        config_file: str | Path | None = None,
        connections: int = 1,
    ) -> None:
        self.directory = _as_directory(providers)
        self.codec = get_codec(codec)
        self.timeout = timeout
        self.injvm = injvm
        self.config = LayeredConfig()
        given = {"cluster": cluster, "balancer": balancer}
        layer = {**{k: v for k, v in given.items() if v is not None}, **(governance or {})}
        self.config.put("consumer", "*", layer or None)
        for scope, layer in (read_file(config_file) if config_file else {}).items():
            self.config.put("consumer", scope, layer, source="file")
        self.invoker: Invoker = invoker or SocketInvoker(
            codec=self.codec,
            ssl=ssl,
            token=token,
            limits=limits,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            backoff=backoff,
            connections=connections,
        )
        self.cluster = ClusterInvoker(
            self.directory,
            self.invoker,
            self.config,
            global_interceptors("client") + list(interceptors),
            injvm=InjvmInvoker() if injvm else None,
            registry=registry if registry is not None else getattr(providers, "registry", None),
            labels=labels,
        )
        self.cluster.feed.watch_global()
        defaults = self.config.effective("*")
        CLUSTERS.get(defaults.cluster)  # a wrong name fails here, not at the first call
        get_balancer(defaults.balancer)
        self._closed = False
        self._resume_failcache()

    def configure(self, service: str = "*", method: str | None = None, **settings: Any) -> None:
        """Set this consumer's governance settings for ``service`` (``"*"``: all), or for one
        ``method`` of it: ``cluster``, ``retries``, ``idempotent``, ``balancer``, ... (see
        :class:`rpc.config.Settings`). Later calls add to earlier ones."""
        layer = dict(self.config.layer("consumer", service) or {})
        if method is None:
            layer.update(settings)
        else:
            methods = dict(layer.get("methods") or {})
            methods[method] = {**methods.get(method, {}), **settings}
            layer["methods"] = methods
        self.config.put("consumer", service, layer)
        self._resume_failcache()

    def _resume_failcache(self) -> None:
        """Open the durable queue of every scope configured as ``failcache``: what a
        previous process left there is delivered without waiting for a new call."""
        for service, method in self.config.scopes():
            settings = self.config.effective(service, method)
            if settings.cluster == "failcache":
                self.cluster.failcache(settings)

    @property
    def _channels(self) -> dict[str, Channel]:
        """The socket invoker's links by address (for tests of the transport)."""
        return getattr(self.invoker, "channels", {})

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append an interceptor (innermost); the chain is rebuilt once, here."""
        self.cluster.add_interceptor(interceptor)

    # -- proxies ----------------------------------------------------------
    @overload
    def proxy(self, service: str, iface: type[T], **options: Any) -> T: ...
    @overload
    def proxy(self, service: str, iface: None = None, **options: Any) -> Any: ...
    def proxy(self, service: str, iface: type[Any] | None = None, **options: Any) -> Any:
        """A proxy whose methods are coroutines; typed by ``iface`` (a Protocol) if given.

        Options: ``version``, ``group``, ``timeout``, ``attachments``. Methods of ``iface``
        marked :func:`rpc.idempotent` are configured so (they may be retried when in doubt).
        """
        for method in declared_idempotent(iface):
            if not self.config.effective(service, method).idempotent:
                self.configure(service, method, idempotent=True)
        return AsyncProxy(self, service, iface, CallOptions(**options))

    async def generic(self, service: str, method: str, *args: Any, **options: Any) -> Any:
        """Call without an interface; arguments and result are plain data."""
        return await self.start(service, method, args, None, CallOptions(**options))

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
    ) -> Any:
        """One call through the cluster: provider chosen per attempt, chain run per attempt."""
        return await self.start(service, method, args, kwargs, options, oneway=oneway)

    def start(
        self,
        service: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        options: CallOptions = CallOptions(),
        *,
        oneway: bool = False,
        strategy: ClusterStrategy | None = None,
    ) -> Awaitable[Any]:
        """Like :meth:`invoke` minus one coroutine layer: the awaitable of the strategy."""
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
            tag = current_tag()
            if tag is not None and TAG not in inv.attachments:  # serving a tagged request
                inv.attachments[TAG] = tag
            if strategy is None:
                return self.cluster.invoke(inv)
            return strategy.invoke(inv, self.cluster)
        except Exception as exc:
            return _raise(exc)

    # -- call models beyond one request -----------------------------------
    async def parallel(
        self, calls: Iterable[Call], *, return_exceptions: bool = False
    ) -> list[Any]:
        """Run several calls at once; results in the order given."""
        return await asyncio.gather(
            *(self.start(c.service, c.method, c.args, c.kwargs, c.options) for c in calls),
            return_exceptions=return_exceptions,
        )

    async def broadcast(
        self, service: str, method: str, *args: Any, **options: Any
    ) -> list[Outcome]:
        """The ``broadcast`` strategy: every provider of ``service``, an :class:`Outcome` each."""
        opts = CallOptions(**options)
        return await self.start(
            service, method, args, None, opts, strategy=CLUSTERS.get("broadcast")()
        )

    async def forking(
        self, service: str, method: str, *args: Any, forks: int = 2, **options: Any
    ) -> Any:
        """The ``forking`` strategy: ``forks`` providers at once, the first success wins."""
        strategy = Forking(self.cluster.settings(service).merged({"forks": forks}))
        opts = CallOptions(**options)
        return await self.start(service, method, args, None, opts, strategy=strategy)

    # -- lifecycle ----------------------------------------------------------
    async def close(self) -> None:
        self._closed = True
        await self.cluster.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _raise(exc: BaseException) -> Any:
    raise exc


async def _converted(call: Awaitable[Any], convert: Converter) -> Any:
    return convert(await call)


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


class AsyncMethod:
    """One remote method: ``await m(...)``, ``m.oneway(...)``, ``m.future(...)``,
    ``m.callback(..., on_done=)``."""

    __slots__ = ("_client", "_convert", "_method", "_options", "_service")

    def __init__(
        self,
        client: AsyncClient,
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

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        call = self._client.start(self._service, self._method, args, kwargs or None, self._options)
        return call if self._convert is None else _converted(call, self._convert)

    async def oneway(self, *args: Any, **kwargs: Any) -> None:
        """Fire and forget: returns once the request is written; no response comes back."""
        await self._client.start(
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


class AsyncProxy:
    """A proxy whose methods are coroutines; attribute access makes each method once."""

    def __init__(
        self, client: AsyncClient, service: str, iface: type[Any] | None, options: CallOptions
    ) -> None:
        self._client = client
        self._service = service
        self._iface = iface
        self._options = options

    def __getattr__(self, name: str) -> AsyncMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        method = AsyncMethod(
            self._client, self._service, name, self._options, return_converter(self._iface, name)
        )
        setattr(self, name, method)
        return method

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._service!r}>"
