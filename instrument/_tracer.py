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
from opentelemetry.trace import Link, SpanKind

from ._context import SPAN_KEY, SUPPRESS_KEY, with_span
from ._context import attach as _attach
from ._context import current as _current
from ._context import detach as _detach
from ._sampling import AlwaysOn, ParentBased, Sampler, TraceIdRatio, get_sampler
from ._span import KIND_NAMES, Resource, Span, SpanSink, SpanSite

__all__ = ["Tracer", "TracerProvider", "new_span_id", "new_trace_id"]

_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)  # forked workers must not share ids
_getrandbits = _random.getrandbits
_ZERO32 = "0" * 32
_ZERO16 = "0" * 16
_MAX_SITES = 10_000  # spans named after data (made-up names): stay bounded


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


def new_span_hex() -> str:
    """A span id as the 16 hex digits the record and ``traceparent`` carry (never all zero).

    ``to_bytes().hex()`` is about twice as fast as ``format(value, "016x")``."""
    value = _getrandbits(64).to_bytes(8, "big").hex()
    return value if value != _ZERO16 else f"{new_span_id():016x}"


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
        self.sampler = sampler = sampler or get_sampler()
        # The common samplers, decided without a call: follow the parent; keep every root.
        self._follows_parent = type(sampler) is ParentBased
        root = sampler.root if type(sampler) is ParentBased else sampler
        self._keeps_roots = type(root) is AlwaysOn or (
            type(root) is TraceIdRatio and root.ratio >= 1.0
        )
        self._sites: dict[tuple[str, str], SpanSite] = {}
        self._tracer = Tracer(self)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Tracer:
        return self._tracer

    def site(self, name: str, kind: str = "INTERNAL", **fields: Any) -> SpanSite:
        """A new call site of this provider (see :class:`SpanSite`)."""
        return SpanSite(self.sink, self.resource, name, kind, **fields)

    def named_site(self, name: str, kind: str) -> SpanSite:
        """The shared site of spans started by name through the API (cached, bounded)."""
        site = self._sites.get((name, kind))
        if site is None:
            if len(self._sites) >= _MAX_SITES:
                self._sites.clear()
            site = self._sites[(name, kind)] = SpanSite(self.sink, self.resource, name, kind)
        return site

    def start_span(
        self,
        name: str,
        kind: str,
        parent: trace.Span | None,
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        """A span named ``name`` descending from ``parent`` (a root when ``None``)."""
        return self.start(self.named_site(name, kind), parent, attributes)

    def start(
        self,
        site: SpanSite,
        parent: trace.Span | None,
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        """The fast path for our interceptors: a span of ``site``, child of ``parent``."""
        if isinstance(parent, Span):
            trace_hex, parent_hex = parent.trace_hex, parent.span_hex
            sampled = (
                parent.sampled
                if self._follows_parent
                else self.sampler.should_sample(int(trace_hex, 16), parent.sampled)
            )
            return Span(
                site, trace_hex, new_span_hex(), parent_hex, sampled, parent.trace_state, attributes
            )
        if parent is not None and (ctx := parent.get_span_context()).is_valid:
            return self.start_remote(
                site,
                f"{ctx.trace_id:032x}",
                f"{ctx.span_id:016x}",
                ctx.trace_flags.sampled,
                ctx.trace_state.to_header() if ctx.trace_state else "",
                attributes,
            )
        return self.start_root(site, attributes)

    def start_root(self, site: SpanSite, attributes: dict[str, Any] | None = None) -> Span:
        """A span starting a new trace: both ids from one random draw."""
        ids = _getrandbits(192).to_bytes(24, "big").hex()
        trace_hex, span_hex = ids[:32], ids[32:]
        if trace_hex == _ZERO32 or span_hex == _ZERO16:  # one draw in 2**64
            trace_hex, span_hex = f"{new_trace_id():032x}", f"{new_span_id():016x}"
        sampled = self._keeps_roots or self.sampler.should_sample(int(trace_hex, 16), None)
        return Span(site, trace_hex, span_hex, "", sampled, "", attributes)

    def start_remote(
        self,
        site: SpanSite,
        trace_hex: str,
        parent_hex: str,
        parent_sampled: bool,
        trace_state: str = "",
        attributes: dict[str, Any] | None = None,
    ) -> Span:
        """A span whose parent lives in another process (from a ``traceparent``)."""
        sampled = (
            parent_sampled
            if self._follows_parent
            else self.sampler.should_sample(int(trace_hex, 16), parent_sampled)
        )
        return Span(site, trace_hex, new_span_hex(), parent_hex, sampled, trace_state, attributes)

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
        ctx = _current() if context is None else context
        if ctx.get(SUPPRESS_KEY):
            return trace.INVALID_SPAN  # our own export calls are never traced
        provider = self._provider
        span = provider.start(
            provider.named_site(name, KIND_NAMES[kind.value]),
            ctx.get(SPAN_KEY),  # type: ignore[arg-type]
            dict(attributes) if attributes else None,
        )
        if start_time is not None:
            span.start_ns = start_time
        if links:
            for link in links:
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
        self._token = _attach(with_span(span, _current()))
        return span

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        _detach(self._token)  # type: ignore[arg-type]
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
