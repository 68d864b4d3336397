"""The OpenTelemetry API's tracer provider, on our lean spans.

Installing :class:`TracerProvider` globally (``opentelemetry.trace.set_tracer_provider``)
makes spans of every OpenTelemetry-instrumented library in the process (``requests``,
databases...) join the same traces and flow through the same pipeline as the RPC spans.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.trace import Link, SpanKind

from ._sampling import Sampler, get_sampler
from ._span import KIND_NAMES, Resource, Span, SpanSink

__all__ = ["Tracer", "TracerProvider", "new_span_id", "new_trace_id"]

_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)  # forked workers must not share ids
_getrandbits = _random.getrandbits


def new_trace_id() -> int:
    while True:
        value = _getrandbits(128)
        if value:
            return value


def new_span_id() -> int:
    while True:
        value = _getrandbits(64)
        if value:
            return value


class TracerProvider(trace.TracerProvider):
    """Hands out :class:`Tracer` objects that all feed one sink (the export pipeline)."""

    def __init__(
        self,
        resource: Resource,
        sink: SpanSink,
        sampler: Sampler | None = None,
    ) -> None:
        self.resource = resource
        self.sink = sink
        self.sampler = sampler or get_sampler()
        self._tracer = Tracer(self)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Tracer:
        return self._tracer

    def start_span(
        self,
        name: str,
        kind: str,
        parent: trace.Span | None,
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        """The fast path for our interceptors: ``parent`` is the span to descend from."""
        if isinstance(parent, Span):
            trace_id, parent_id = parent.trace_id, parent.span_id
            sampled = self.sampler.should_sample(trace_id, parent.sampled)
            state = parent.trace_state
        elif parent is not None and (ctx := parent.get_span_context()).is_valid:
            trace_id, parent_id = ctx.trace_id, ctx.span_id
            sampled = self.sampler.should_sample(trace_id, ctx.trace_flags.sampled)
            state = ctx.trace_state.to_header() if ctx.trace_state else ""
        else:
            trace_id, parent_id, state = new_trace_id(), 0, ""
            sampled = self.sampler.should_sample(trace_id, None)
        return Span(
            self.sink,
            self.resource,
            name,
            kind,
            trace_id,
            _getrandbits(64) or new_span_id(),
            parent_id,
            sampled,
            state,
            attributes,
        )

    def start_remote_child(
        self,
        name: str,
        kind: str,
        trace_id: int,
        parent_id: int,
        parent_sampled: bool,
        trace_state: str = "",
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        """A span whose parent lives in another process (from a ``traceparent``)."""
        return Span(
            self.sink,
            self.resource,
            name,
            kind,
            trace_id,
            _getrandbits(64) or new_span_id(),
            parent_id,
            self.sampler.should_sample(trace_id, parent_sampled),
            trace_state,
            attributes,
        )

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        flush = getattr(self.sink, "force_flush", None)
        return bool(flush(timeout_millis / 1000)) if flush else True

    def shutdown(self) -> None:
        close = getattr(self.sink, "shutdown", None)
        if close:
            close()


class Tracer(trace.Tracer):
    """The API's tracer: parents come from the OpenTelemetry context as usual."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY, context):
            return trace.INVALID_SPAN  # our own export calls are never traced
        parent = trace.get_current_span(context)
        span = self._provider.start_span(
            name, KIND_NAMES[kind.value], parent, dict(attributes) if attributes else None
        )
        if start_time is not None:
            span.start_ns = start_time
        for link in links or ():
            span.add_link(link.context, link.attributes)
        return span

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _CurrentSpan:
        return _CurrentSpan(
            self,
            (name, context, kind, attributes, links, start_time),
            end_on_exit,
            record_exception,
            set_status_on_exception,
        )


class _CurrentSpan:
    """``with tracer.start_as_current_span(...) as span`` (or as a decorator), no generator."""

    __slots__ = ("_args", "_end", "_record", "_set_status", "_token", "_tracer", "span")

    def __init__(
        self, tracer: Tracer, args: tuple[Any, ...], end: bool, record: bool, set_status: bool
    ) -> None:
        self._tracer = tracer
        self._args = args
        self._end = end
        self._record = record
        self._set_status = set_status
        self._token: object = None
        self.span: trace.Span = trace.INVALID_SPAN

    def __enter__(self) -> trace.Span:
        self.span = span = self._tracer.start_span(*self._args)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        span = self.span
        if isinstance(exc, Exception) and span.is_recording():
            if self._record:
                span.record_exception(exc, escaped=True)
            if self._set_status:
                span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
        if self._end:
            span.end()

    def _again(self) -> _CurrentSpan:
        return _CurrentSpan(self._tracer, self._args, self._end, self._record, self._set_status)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """As a decorator: a new span around each call of ``fn`` (sync or async)."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._again():
                    return await fn(*args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._again():
                return fn(*args, **kwargs)

        return wrapper
