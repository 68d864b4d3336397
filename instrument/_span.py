"""A lean implementation of the OpenTelemetry API's ``Span``, and its record encoding.

Why not the SDK's span: on the RPC hot path every microsecond shows, and the
SDK builds a ``SpanContext``, a ``BoundedAttributes``, a lock and a
``ReadableSpan`` copy per span. Here ids stay integers, the API objects are
built only when a library asks for them, and a finished span is queued as is:
the export thread turns it into the JSON span record (:mod:`instrument.model`).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, TraceState

from .model import SCHEMA_VERSION

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Resource", "Span", "SpanSink", "encode_span"]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_EMPTY_STATE = TraceState()
KIND_NAMES = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # SpanKind values


class SpanSink(Protocol):
    """Where ended spans go (the export pipeline); must never block or raise."""

    def on_end(self, span: Span) -> None: ...


@dataclass(frozen=True, slots=True)
class Resource:
    """Who makes the spans: service name, instance (``host:port`` or ``host:pid``), host."""

    service: str
    instance: str
    host: str


class Span(trace.Span):
    """A span that records cheaply; exported when sampled or when it ends in error."""

    __slots__ = (
        "_context",
        "attributes",
        "duration_ns",
        "error_code",
        "error_message",
        "events",
        "instance",
        "kind",
        "name",
        "parent_id",
        "peer_instance",
        "peer_service",
        "resource",
        "sampled",
        "sink",
        "span_id",
        "start_ns",
        "status",
        "t0",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        sink: SpanSink,
        resource: Resource,
        name: str,
        kind: str,
        trace_id: int,
        span_id: int,
        parent_id: int,
        sampled: bool,
        trace_state: str = "",
        attributes: dict[str, Any] | None = None,
        start_ns: int | None = None,
    ) -> None:
        self.sink = sink
        self.resource = resource
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.sampled = sampled
        self.trace_state = trace_state
        self.attributes = attributes
        self.events: list[tuple[int, str, Mapping[str, Any]]] | None = None
        self.status = "OK"
        self.error_code = ""
        self.error_message = ""
        self.peer_service = ""
        self.peer_instance = ""
        self.instance = resource.instance
        self._context: SpanContext | None = None
        self.duration_ns = -1
        self.t0 = time.perf_counter_ns()
        self.start_ns = time.time_ns() if start_ns is None else start_ns

    # -- the OpenTelemetry API ---------------------------------------------
    def get_span_context(self) -> SpanContext:
        ctx = self._context
        if ctx is None:
            ctx = self._context = SpanContext(
                self.trace_id,
                self.span_id,
                False,
                _SAMPLED if self.sampled else _NOT_SAMPLED,
                TraceState.from_header([self.trace_state]) if self.trace_state else _EMPTY_STATE,
            )
        return ctx

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self.attributes is None:
            self.attributes = dict(attributes)
        else:
            self.attributes.update(attributes)

    def set_attribute(self, key: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {key: value}
        else:
            self.attributes[key] = value

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        event = ((timestamp or time.time_ns()) // 1000, name, attributes or {})
        if self.events is None:
            self.events = [event]
        else:
            self.events.append(event)

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        """Links are kept as ``link`` events: the record has no separate list for them."""
        self.add_event(
            "link",
            {
                "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}",
                **(attributes or {}),
            },
        )

    def update_name(self, name: str) -> None:
        self.name = name

    def is_recording(self) -> bool:
        return self.duration_ns < 0

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, Status):
            code, description = status.status_code, status.description or description
        else:
            code = status
        if code is StatusCode.ERROR:
            self.status = "ERROR"
            if description:
                self.error_message = description
        elif code is StatusCode.OK:
            self.status = "OK"

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        attrs = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": escaped,
        }
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.duration_ns >= 0:
            return
        if end_time is None:
            self.duration_ns = time.perf_counter_ns() - self.t0
        else:
            self.duration_ns = max(0, end_time - self.start_ns)
        if self.sampled or self.status == "ERROR":
            self.sink.on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if isinstance(exc_val, Exception) and self.duration_ns < 0:
            self.record_exception(exc_val, escaped=True)
            self.set_status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}")
        self.end()

    # -- ours ---------------------------------------------------------------
    def fail(self, code: str, message: str) -> None:
        """Mark the span failed with a stable error code (DESIGN §3.6)."""
        self.status = "ERROR"
        self.error_code = code
        self.error_message = message

    def add_events(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Record governance decisions reported by the RPC chain (``Invocation.events``)."""
        now = time.time_ns() // 1000
        batch = [(now, name, attrs) for name, attrs in events]
        if self.events is None:
            self.events = batch
        else:
            self.events.extend(batch)

    def __repr__(self) -> str:
        return f"Span({self.kind} {self.name!r} {self.trace_id:032x}/{self.span_id:016x})"


try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # optional: the stdlib path below is the fallback
    _orjson_dumps = None

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode  # ASCII out
_esc = json.encoder.encode_basestring_ascii  # the C string encoder: quotes and escapes


def _resource_fields(res: Resource) -> str:
    return f'"service":{_esc(res.service)},"host":{_esc(res.host)},'


def encode_span(span: Span) -> bytes:
    """The span record of :mod:`instrument.model` as JSON bytes, built straight from the span.

    This runs once per exported span on the export thread, holding the GIL the event
    loop also wants: orjson when installed (about half the cost), else the stdlib.
    """
    if _orjson_dumps is not None:
        try:
            return _encode_orjson(span)
        except TypeError:  # e.g. an integer attribute beyond 64 bits: the stdlib copes
            pass
    return _encode_stdlib(span)


def _encode_orjson(span: Span) -> bytes:
    res = span.resource
    events = span.events
    return _orjson_dumps(  # type: ignore[misc]
        {
            "schema": SCHEMA_VERSION,
            "trace_id": f"{span.trace_id:032x}",
            "span_id": f"{span.span_id:016x}",
            "parent_span_id": f"{span.parent_id:016x}" if span.parent_id else "",
            "name": span.name,
            "kind": span.kind,
            "service": res.service,
            "host": res.host,
            "instance": span.instance,
            "peer_service": span.peer_service,
            "peer_instance": span.peer_instance,
            "start_us": span.start_ns // 1000,
            "duration_us": span.duration_ns // 1000,
            "status": span.status,
            "error_code": span.error_code,
            "error_message": span.error_message,
            "attributes": span.attributes or {},
            "events": [{"time_us": t, "name": n, "attributes": a} for t, n, a in events]
            if events
            else [],
        },
        default=str,
    )


def _encode_stdlib(span: Span) -> bytes:
    """Field by field rather than through a dict: half the cost of ``json.dumps``."""
    events = span.events
    attributes = span.attributes
    parent = f"{span.parent_id:016x}" if span.parent_id else ""
    return (
        f'{{"schema":{SCHEMA_VERSION},"trace_id":"{span.trace_id:032x}",'
        f'"span_id":"{span.span_id:016x}","parent_span_id":"{parent}",'
        f'"name":{_esc(span.name)},"kind":"{span.kind}",{_resource_fields(span.resource)}'
        f'"instance":{_esc(span.instance)},"peer_service":{_esc(span.peer_service)},'
        f'"peer_instance":{_esc(span.peer_instance)},'
        f'"start_us":{span.start_ns // 1000},"duration_us":{span.duration_ns // 1000},'
        f'"status":"{span.status}","error_code":{_esc(span.error_code)},'
        f'"error_message":{_esc(span.error_message)},'
        f'"attributes":{_dumps(attributes) if attributes else "{}"},'
        f'"events":{_encode_events(events) if events else "[]"}}}'
    ).encode()


def _encode_events(events: list[tuple[int, str, Mapping[str, Any]]]) -> str:
    return _dumps([{"time_us": t, "name": n, "attributes": a} for t, n, a in events])
