"""RPC interceptors: a CLIENT span per call attempt, a SERVER span per handled call, and the
health KPIs of both, with W3C trace context carried in the call's attachments.

Each side is one interceptor doing spans and KPIs together: one chain step, one
clock reading. Governance decisions the chain reports on the invocation
(``Invocation.events``: retries, failovers, limits, breaker states) become span
events.

The common call (a known call shape, no baggage, retry, version or group, a W3C 00
parent or none, success) runs in C when ``instrument/_hotpath.c`` is built: the
interceptor asks it to ``begin`` the span and to ``end`` it, and takes the call in
the Python below (the reference) whenever it answers ``None`` or hands the span back.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import context as otel_context

import rpc

from ._context import BAGGAGE_KEY, SPAN_KEY, Context, context_var, with_span
from ._context import attach as _attach
from ._context import current as _current
from ._context import detach as _detach
from ._kpi import Key, KpiRecorder
from ._native import hotpath
from ._propagation import (
    BAGGAGE,
    CALLER,
    MAX_TRACESTATE,
    SAMPLED_LAST_DIGITS,
    TRACEPARENT,
    TRACESTATE,
    ZERO_SPAN_ID,
    ZERO_TRACE_ID,
    extract_baggage,
    inject_baggage,
    match_traceparent_00,
    split_traceparent,
)
from ._sampling import AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio
from ._span import Span, SpanSite
from ._span import perf_ns as _perf_ns
from ._tracer import TracerProvider

__all__ = ["ClientTracing", "ServerTracing"]

log = logging.getLogger("callscope.instrument")

_MAX_SITES = 10_000  # generic calls with made-up names, many peers: stay bounded
_Site = tuple[SpanSite, Key, str]  # site, KPI key, the site's encoded fields
_EMPTY = Context()


def _details(inv: rpc.Invocation) -> dict[str, Any] | None:
    """The attributes only some calls have (kept on the span; the site has the rest)."""
    attributes: dict[str, Any] = {}
    if inv.attempt > 1:
        attributes["rpc.attempt"] = inv.attempt
    if inv.version:
        attributes["rpc.version"] = inv.version
    if inv.group:
        attributes["rpc.group"] = inv.group
    if inv.oneway:
        attributes["rpc.oneway"] = True
    return attributes or None


def _base_attributes(service: str, method: str) -> dict[str, Any]:
    return {"rpc.system": "callscope", "rpc.service": service, "rpc.method": method}


def _fail(span: Any, exc: BaseException) -> None:
    if isinstance(exc, rpc.RpcError):
        span.fail(exc.code, exc.message)
    elif isinstance(exc, (GeneratorExit, KeyboardInterrupt, SystemExit)):
        span.fail(rpc.ErrorCode.CANCELLED, type(exc).__name__)
    elif isinstance(exc, BaseException) and type(exc).__name__ == "CancelledError":
        span.fail(rpc.ErrorCode.CANCELLED, "cancelled")
    else:
        span.fail(rpc.ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")


def _stats_end(recorder: Any, stats: Any, duration_ns: int) -> None:
    recorder.end_ns(stats, duration_ns, False)


def _finish_failed(span: Span, inv: rpc.Invocation, seen: int, exc: BaseException) -> None:
    _fail(span, exc)
    events = inv.events
    if events and len(events) > seen:
        span.add_events(events[seen:])
    span.end()


def _root_bound(provider: TracerProvider) -> int | None:
    """How the C path samples new traces, for the samplers it knows (parent-based, roots
    always, never, or by trace id ratio): kept when the id's low 64 bits are below this."""
    sampler = provider.sampler
    if type(sampler) is not ParentBased:
        return None
    root = sampler.root
    if type(root) is AlwaysOn:
        return 1 << 64
    if type(root) is AlwaysOff:
        return 0
    if type(root) is TraceIdRatio:
        return root._bound
    return None


class _Tracing:
    """What both sides share: sites per call shape, and how a call's span and KPIs end."""

    def __init__(self, provider: TracerProvider, recorder: KpiRecorder | None) -> None:
        self.provider = provider
        self.recorder = recorder
        self._sink = provider.sink
        # With the export pipeline that owns our recorder, a call that went well only
        # queues its span; the export thread closes its KPI counters with the batch.
        self._deferred = recorder is not None and getattr(provider.sink, "recorder", None) is (
            recorder
        )
        self._sites: dict[tuple[str, ...], _Site] = {}
        self._hot: Any = None

    def _native(self, server: bool, name: str) -> Any:
        """The C fast path for this interceptor, when built and when what it assumes holds:
        the export pipeline closes our KPIs, the sampler is parent-based with a root
        sampler the C path knows, the OpenTelemetry context is the API's default
        ``ContextVar``."""
        sink = self._sink
        root_bound = _root_bound(self.provider)
        if (
            hotpath is None
            or not self._deferred
            or context_var is None
            or root_bound is None
            or not hasattr(sink, "_queue")
        ):
            return None
        return hotpath.Hot(
            server=server,
            sites=self._sites,
            stats=self.recorder._stats,  # type: ignore[union-attr]
            bounds=self.recorder._bounds_ns,  # type: ignore[union-attr]
            queue=sink._queue,
            queue_max=sink._max,  # type: ignore[attr-defined]  # the pipeline's sink (checked above)
            wake_at=sink._wake_at,  # type: ignore[attr-defined]
            wake=sink._wake.set,  # type: ignore[attr-defined]
            on_full=sink.on_end,
            finish=self._native_finish,
            detach=otel_context.detach,
            var=context_var,
            span_key=SPAN_KEY,
            baggage_key=BAGGAGE_KEY,
            context_type=Context,
            span_type=Span,
            name=name,
            invocation_type=rpc.Invocation,
            root_bound=root_bound,
        )

    async def __call__(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        hot = self._hot
        span = None
        if hot is not None:
            try:
                span = hot.begin(inv)
            except Exception:  # the Python path takes the call (and says what went wrong)
                log.warning("callscope: could not begin a span in C; tracing in Python",
                            exc_info=True)  # fmt: skip
        if span is not None:
            try:
                result = await call_next(inv)
            except BaseException as exc:
                hot.reset(span)  # the server's span stops being current
                self._native_failed(span, inv, exc)
                raise
            try:
                hot.end(span, inv)
            except Exception:  # telemetry never fails the call it observes (STYLE §6)
                log.warning("callscope: could not end a span in C; dropped", exc_info=True)
            return result
        return await self._traced(inv, call_next)

    async def _traced(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        raise NotImplementedError  # each side's reference path

    def _native_finish(self, span: Span, inv: rpc.Invocation) -> None:
        """The C path's end of a call it does not end itself (events, a renamed span...)."""
        stats, span.kpi = span.kpi, None
        self._finish(span, inv, 0, stats)

    def _native_failed(self, span: Span, inv: rpc.Invocation, exc: BaseException) -> None:
        stats, span.kpi = span.kpi, None
        self._failed(span, inv, 0, stats, exc)

    def _keep(self, key: tuple[str, ...], site: SpanSite, kpi_key: Key) -> _Site:
        """Remember a call shape's site, KPI key and encoded site fields (bounded)."""
        if len(self._sites) >= _MAX_SITES:
            self._sites.clear()
        entry = self._sites[key] = (site, kpi_key, site.fields or site._encode())
        return entry

    def _queue_plain(
        self,
        span: Span,
        inv: rpc.Invocation,
        site: SpanSite,
        fields: str,
        kpi_key: Key,
        stats: Any,
    ) -> None:
        """End a call that went well. A span with nothing of its own beyond ids and times is
        queued as an :data:`Ended` tuple (see there: the garbage collector never walks it);
        any other goes the general way (:meth:`_finish`)."""
        if not (
            span.attributes is None
            and span.events is None
            and span.status == "OK"
            and span.site is site
        ):
            self._finish(span, inv, 0, stats)
            return
        duration = span.duration_ns = _perf_ns() - span.t0
        ended = (
            fields if span.sampled else None,
            span.trace_hex,
            span.span_hex,
            span.parent_hex,
            span.start_ns,
            duration,
            kpi_key,
        )
        if not self._sink.on_end(ended):  # a full queue: close the counters here
            _stats_end(self.recorder, stats, duration)

    def _finish(self, span: Span, inv: rpc.Invocation, seen: int, stats: Any) -> None:
        events = inv.events
        if events and len(events) > seen:
            span.add_events(events[seen:])
        if stats is not None and self._deferred and span.duration_ns < 0:
            span.duration_ns = _perf_ns() - span.t0
            span.kpi = stats
            if self._sink.on_end(span):
                return
            span.kpi = None
        else:
            span.end()
        if stats is not None:
            self.recorder.end_ns(stats, span.duration_ns, False)  # type: ignore[union-attr]

    def _failed(
        self, span: Span, inv: rpc.Invocation, seen: int, stats: Any, exc: BaseException
    ) -> None:
        _finish_failed(span, inv, seen, exc)
        if stats is not None:
            self.recorder.end_ns(stats, span.duration_ns, True)  # type: ignore[union-attr]


class ClientTracing(_Tracing):
    """Client side: a CLIENT span per attempt (child of the current span) and consumer KPIs.

    Per (service, method, provider) a :class:`~instrument.SpanSite` holds the span name,
    peer and base attributes, and the KPI key: a call only draws ids, reads the clock
    twice, and queues its span.
    """

    def __init__(self, provider: TracerProvider, recorder: KpiRecorder | None = None) -> None:
        super().__init__(provider, recorder)
        self._caller = provider.resource.service
        self._hot = self._native(False, self._caller)

    def _site(self, key: tuple[str, ...]) -> _Site:
        service, method, peer = key
        site = self.provider.site(
            f"{service}/{method}",
            "CLIENT",
            peer_service=service,
            peer_instance=peer,
            attributes=_base_attributes(service, method),
        )
        return self._keep(key, site, (service, peer, method, "consumer"))

    async def _traced(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        key = (inv.service, inv.method, inv.peer)
        site, kpi_key, fields = self._sites.get(key) or self._site(key)
        context = _current()
        parent = context.get(SPAN_KEY)
        if parent is None:
            span = self.provider.start_root(site)
        else:
            span = self.provider.start(site, parent)  # type: ignore[arg-type]
        if inv.attempt > 1 or inv.version or inv.group or inv.oneway:
            span.attributes = _details(inv)
        attachments = inv.attachments
        attachments[TRACEPARENT] = (
            f"00-{span.trace_hex}-{span.span_hex}-{'01' if span.sampled else '00'}"
        )
        if span.trace_state:
            attachments[TRACESTATE] = span.trace_state
        attachments[CALLER] = self._caller
        if context.get(BAGGAGE_KEY):
            inject_baggage(attachments, context)
        events = inv.events
        seen = len(events) if events else 0
        recorder = self.recorder
        stats = recorder.begin_key(kpi_key) if recorder is not None else None
        try:
            result = await call_next(inv)
        except BaseException as exc:
            self._failed(span, inv, seen, stats, exc)
            raise
        if inv.events is None and stats is not None and self._deferred:
            self._queue_plain(span, inv, site, fields, kpi_key, stats)  # the common case
            return result
        self._finish(span, inv, seen, stats)
        return result


class ServerTracing(_Tracing):
    """Server side: a SERVER span per call, current while the handler runs; provider KPIs.

    ``instance`` is this provider's ``host:port`` on spans and KPIs (default: the
    process instance of the tracer provider's resource).
    """

    def __init__(
        self,
        provider: TracerProvider,
        recorder: KpiRecorder | None = None,
        instance: str | None = None,
    ) -> None:
        super().__init__(provider, recorder)
        self.instance = instance or provider.resource.instance
        self._hot = self._native(True, self.instance)

    def _site(self, key: tuple[str, ...]) -> _Site:
        service, method, caller, peer, instance = key
        site = self.provider.site(
            f"{service}/{method}",
            "SERVER",
            instance=instance,
            peer_service=caller,
            peer_instance=peer,
            attributes=_base_attributes(service, method),
        )
        return self._keep(key, site, (service, instance, method, "provider"))

    async def _traced(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        attachments = inv.attachments
        if attachments:
            caller = attachments.get(CALLER)
            parent = attachments.get(TRACEPARENT)
        else:
            caller = parent = None
        key = (
            inv.service,
            inv.method,
            caller if caller.__class__ is str else "",
            inv.peer,
            inv.local or self.instance,
        )
        site, kpi_key, fields = self._sites.get(key) or self._site(key)
        provider = self.provider
        # W3C version 00, the common case, checked and sliced here; the rest in the helper
        if (
            parent.__class__ is str
            and len(parent) == 55
            and match_traceparent_00(parent) is not None
            and parent[3:35] != ZERO_TRACE_ID
            and parent[36:52] != ZERO_SPAN_ID
        ):
            remote: tuple[str, str, bool] | None = (
                parent[3:35],
                parent[36:52],
                parent[54] in SAMPLED_LAST_DIGITS,
            )
        else:
            remote = split_traceparent(parent) if parent is not None else None
        if remote is not None:
            state = attachments.get(TRACESTATE)
            span = provider.start_remote(
                site,
                *remote,
                state if state.__class__ is str and len(state) <= MAX_TRACESTATE else "",
            )
        else:
            span = provider.start_root(site)
        if inv.version or inv.group or inv.oneway:
            span.attributes = _details(inv)
        if attachments and BAGGAGE in attachments:
            token = _attach(with_span(span, extract_baggage(attachments, _EMPTY)))
        else:
            token = _attach(Context({SPAN_KEY: span}))
        events = inv.events
        seen = len(events) if events else 0
        recorder = self.recorder
        stats = recorder.begin_key(kpi_key) if recorder is not None else None
        try:
            result = await call_next(inv)
        except BaseException as exc:
            _detach(token)
            self._failed(span, inv, seen, stats, exc)
            raise
        _detach(token)
        if inv.events is None and stats is not None and self._deferred and span.duration_ns < 0:
            self._queue_plain(span, inv, site, fields, kpi_key, stats)  # the common case
            return result
        self._finish(span, inv, seen, stats)
        return result
