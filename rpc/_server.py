"""The provider side: export services, accept connections, dispatch, drain on stop."""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import logging
import ssl as _ssl
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import _injvm
from ._codec import Codec, get_codec
from ._connection import Heartbeat
from ._deadlines import Deadlines
from ._defaults import global_interceptors
from ._errors import (
    NotFoundError,
    ProtocolError,
    RpcError,
    TimeoutError,
    UnavailableError,
)
from ._frame import (
    DEFAULT_LIMITS,
    H_EVENT,
    Limits,
)
from ._intake import Arrivals, Decoder
from ._invocation import CallNext, Interceptor, Invocation, build_chain
from ._loop import run_until_signalled
from ._server_connection import ServerConnection, encode_event, error_of, expire
from ._service import ExportedService, ServiceSpec, spec_of
from .cluster._tally import DECISIONS
from .flow._concurrency import NO_DEFAULT, Bulkhead, Concurrency, ConcurrencyLimit, Shed
from .flow._connections import ConnectionLimits
from .flow._gate import Gate, admit_all

__all__ = ["Server"]

log = logging.getLogger("callscope.rpc")

Authenticator = Callable[[str], Any]
Authorizer = Callable[[Any, str, str], bool]


class Server:
    """Serves exported services on one TCP port.

    Each exported service runs behind its own bulkhead (``concurrency``: at most
    ``max_concurrent`` calls at once and ``max_queue`` waiting; set per service with
    :meth:`limit`), and at most ``max_inflight`` calls are admitted server-wide;
    beyond, callers get BUSY (or the service's configured default answer). Sync
    methods run in a shared bounded thread pool (``workers``). At most
    ``max_connections`` links are kept, ``max_connections_per_address`` from one
    client host; a link beyond is told why (RESOURCE_EXHAUSTED) and closed.
    ``gates`` (:class:`rpc.flow.Gate`) are admission checks run in order on each
    request's header, after authorization and before it takes a slot.
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
        gates: Sequence[Gate] = (),
        concurrency: ConcurrencyLimit | None = None,
        max_connections: int = 10_000,
        max_connections_per_address: int = 1_000,
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
        self.concurrency = Concurrency(max_inflight, concurrency)
        self.connection_limits = ConnectionLimits(max_connections, max_connections_per_address)
        self._authenticator = authenticator
        self._authorizer = authorizer
        self._ssl = ssl
        self._injvm = injvm
        self._services: dict[tuple[str, str, str], ExportedService] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="callscope-worker")
        self._interceptors = global_interceptors("server") + list(interceptors)
        self.gates: tuple[Gate, ...] = tuple(gates)
        self._chain: CallNext = build_chain(self._interceptors, self._invoke_method)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[ServerConnection] = set()
        self._expired = 0
        self._starters: list[Callable[[asyncio.AbstractEventLoop], Callable[[], None] | None]] = []
        self._stoppers: list[Callable[[], None]] = []
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
        """Calls admitted and not yet ended (running or queued for a slot)."""
        return self.concurrency.inflight

    @property
    def max_inflight(self) -> int:
        """The server-wide ceiling on admitted calls."""
        return self.concurrency.ceiling

    def limit(self, service: str, limit: ConcurrencyLimit | None) -> None:
        """Set one service's concurrency limits, live (``None``: back to the default)."""
        self.concurrency.configure(service, limit)

    @property
    def expired(self) -> int:
        """Calls whose deadline fired on the provider (each answered TIMEOUT unless oneway)."""
        return self._expired

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append an interceptor (innermost); the chain is rebuilt once, here."""
        self._interceptors.append(interceptor)
        self._chain = build_chain(self._interceptors, self._invoke_method)

    def on_start(
        self, starter: Callable[[asyncio.AbstractEventLoop], Callable[[], None] | None]
    ) -> None:
        """Run ``starter(loop)`` when the server starts (now, if it has); what it returns
        (a callable) runs when the server stops. For helpers that work on the server's loop."""
        self._starters.append(starter)
        if self.loop is not None and not self.closing:
            stopper = starter(self.loop)
            if stopper is not None:
                self._stoppers.append(stopper)

    def add_limiter(self, name: str, **options: Any) -> Any:
        """Build the limiter registered as ``name`` (``rpc.flow.LIMITERS``: ``tiers``,
        ``gradient``, or a plug-in) with ``options`` and put it on this server."""
        from .flow._limiters import LIMITERS

        limiter = LIMITERS.get(name)(**options)
        if callable(getattr(limiter, "attach", None)):
            limiter.attach(self)
        else:
            self.add_gate(limiter)
        return limiter

    def add_gate(self, gate: Gate) -> None:
        """Append an admission gate (run after authorization, before a slot is taken)."""
        if not callable(getattr(gate, "admit", None)):
            raise TypeError(f"a gate needs an admit(service, method, principal) method: {gate!r}")
        self.gates = (*self.gates, gate)

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
        self._deadlines = Deadlines(loop, expire)
        self.arrivals.start(loop)
        for starter in self._starters:
            stopper = starter(loop)
            if stopper is not None:
                self._stoppers.append(stopper)
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
        stoppers, self._stoppers = self._stoppers, []
        for stopper in stoppers:
            stopper()
        event = encode_event({H_EVENT: "closing"})
        for conn in list(self._connections):
            conn.write(event)
        if self.concurrency.inflight:
            self._drained = asyncio.Event()
            try:
                await asyncio.wait_for(self._drained.wait(), grace)
            except builtins.TimeoutError:
                log.warning(
                    "callscope: %d calls still running after %.1fs grace", self.inflight, grace
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
    def _finds(self, service: str, method: str, version: str, group: str) -> Bulkhead | None:
        """The bulkhead of a call that could run here (judged from its header alone), or None."""
        try:
            exported = self._lookup(service, version, group)
        except NotFoundError:
            return None
        return self.concurrency.bulkhead(exported.spec.name) if method in exported.methods else None

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
        head = self._finds(inv.service, inv.method, inv.version, inv.group)
        try:
            if self.gates:
                admit_all(self.gates, inv.service, inv.method, inv.principal)
            held: bool | None = self.concurrency.admit(head)
        except RpcError as err:
            self.rejected(inv.service, inv.method)
            if err.__class__ is not Shed or err.value is NO_DEFAULT:  # type: ignore[attr-defined]
                raise
            return err.value  # type: ignore[attr-defined]
        try:
            async with asyncio.timeout(
                None if inv.deadline is None else inv.deadline - time.monotonic()
            ):
                if not held:
                    held = None  # a cancelled wait gives its queue place back itself
                    await head.wait()  # type: ignore[union-attr]
                    held = True
                return await self._chain(server_inv)
        except Exception as exc:
            raise error_of(exc) from None
        finally:
            self._end(head, held)

    def rejected(self, service: str, method: str) -> None:
        """Count a call refused at admission (no span exists yet): a provider KPI counter."""
        DECISIONS.add(service, self.address, method, "flow.rejected")

    def _end(self, head: Bulkhead | None, held: bool | None) -> None:
        """An admitted call ended: free what it ``held`` (a slot: True, a queue place: False);
        the last one ends a drain."""
        self.concurrency.release(head, held)
        if self._drained is not None and self.concurrency.inflight == 0:
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


def _run_sync(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any] | None,
    deadline: float | None,
) -> Any:
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError("deadline passed while the call waited for a worker")
    return fn(*args, **(kwargs or {}))
