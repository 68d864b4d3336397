"""RPC interceptors: a CLIENT span per call attempt, a SERVER span per handled call, and the
health KPIs of both, with W3C trace context carried in the call's attachments.

Each side is one interceptor doing spans and KPIs together: one chain step, one
clock reading. Governance decisions the chain reports on the invocation
(``Invocation.events``: retries, failovers, limits, breaker states) become span
events.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

import rpc

from ._kpi import KpiRecorder
from ._propagation import (
    BAGGAGE,
    CALLER,
    TRACEPARENT,
    TRACESTATE,
    extract_baggage,
    format_traceparent,
    inject_baggage,
    parse_traceparent,
)
from ._tracer import TracerProvider

__all__ = ["ClientTracing", "ServerTracing"]

_get_current_span = trace.get_current_span
_set_span_in_context = trace.set_span_in_context
_attach = otel_context.attach
_detach = otel_context.detach


class _Names:
    """Span name and base attributes per (service, method): built once, copied per span."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    def get(self, service: str, method: str) -> tuple[str, dict[str, Any]]:
        hit = self._cache.get((service, method))
        if hit is None:
            if len(self._cache) > 10_000:  # generic calls with made-up names: stay bounded
                self._cache.clear()
            hit = self._cache[(service, method)] = (
                f"{service}/{method}",
                {"rpc.system": "callscope", "rpc.service": service, "rpc.method": method},
            )
        return hit


def _details(inv: rpc.Invocation, attributes: dict[str, Any]) -> None:
    if inv.attempt > 1:
        attributes["rpc.attempt"] = inv.attempt
    if inv.version:
        attributes["rpc.version"] = inv.version
    if inv.group:
        attributes["rpc.group"] = inv.group
    if inv.oneway:
        attributes["rpc.oneway"] = True


def _fail(span: Any, exc: BaseException) -> None:
    if isinstance(exc, rpc.RpcError):
        span.fail(exc.code, exc.message)
    elif isinstance(exc, (GeneratorExit, KeyboardInterrupt, SystemExit)):
        span.fail(rpc.ErrorCode.CANCELLED, type(exc).__name__)
    elif isinstance(exc, BaseException) and type(exc).__name__ == "CancelledError":
        span.fail(rpc.ErrorCode.CANCELLED, "cancelled")
    else:
        span.fail(rpc.ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")


class ClientTracing:
    """Client side: a CLIENT span per attempt (child of the current span) and consumer KPIs."""

    def __init__(self, provider: TracerProvider, recorder: KpiRecorder | None = None) -> None:
        self.provider = provider
        self.recorder = recorder
        self._caller = provider.resource.service
        self._names = _Names()

    async def __call__(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        name, base = self._names.get(inv.service, inv.method)
        attributes = dict(base)
        if inv.attempt > 1 or inv.version or inv.group or inv.oneway:
            _details(inv, attributes)
        span = self.provider.start_span(name, "CLIENT", _get_current_span(), attributes)
        span.peer_service = inv.service
        span.peer_instance = inv.peer
        attachments = inv.attachments
        attachments[TRACEPARENT] = format_traceparent(span.trace_id, span.span_id, span.sampled)
        if span.trace_state:
            attachments[TRACESTATE] = span.trace_state
        attachments[CALLER] = self._caller
        inject_baggage(attachments)
        seen = len(inv.events) if inv.events else 0
        recorder = self.recorder
        stats = recorder.begin(inv.service, inv.peer, inv.method, "consumer") if recorder else None
        error = False
        try:
            return await call_next(inv)
        except BaseException as exc:
            error = True
            _fail(span, exc)
            raise
        finally:
            if inv.events and len(inv.events) > seen:
                span.add_events(inv.events[seen:])
            span.end()
            if stats is not None:
                recorder.end(stats, span.duration_ns / 1e9, error)  # type: ignore[union-attr]


class ServerTracing:
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
        self.provider = provider
        self.recorder = recorder
        self.instance = instance or provider.resource.instance
        self._names = _Names()

    async def __call__(self, inv: rpc.Invocation, call_next: rpc.CallNext) -> Any:
        name, base = self._names.get(inv.service, inv.method)
        attributes = dict(base)
        if inv.version or inv.group or inv.oneway:
            _details(inv, attributes)
        attachments = inv.attachments
        provider = self.provider
        remote = (
            parse_traceparent(attachments.get(TRACEPARENT), attachments.get(TRACESTATE))
            if attachments
            else None
        )
        if remote is not None:
            span = provider.start_remote_child(
                name, "SERVER", remote.trace_id, remote.span_id, remote.sampled,
                remote.trace_state, attributes,
            )  # fmt: skip
        else:
            span = provider.start_span(name, "SERVER", None, attributes)
        if attachments:
            caller = attachments.get(CALLER)
            if isinstance(caller, str):
                span.peer_service = caller
        span.peer_instance = inv.peer
        instance = inv.local or self.instance
        span.instance = instance
        context = otel_context.Context()
        if attachments and BAGGAGE in attachments:
            context = extract_baggage(attachments, context)
        token = _attach(_set_span_in_context(span, context))
        seen = len(inv.events) if inv.events else 0
        recorder = self.recorder
        stats = recorder.begin(inv.service, instance, inv.method, "provider") if recorder else None
        error = False
        try:
            return await call_next(inv)
        except BaseException as exc:
            error = True
            _fail(span, exc)
            raise
        finally:
            _detach(token)
            if inv.events and len(inv.events) > seen:
                span.add_events(inv.events[seen:])
            span.end()
            if stats is not None:
                recorder.end(stats, span.duration_ns / 1e9, error)  # type: ignore[union-attr]
