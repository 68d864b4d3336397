"""A lean implementation of the OpenTelemetry API's ``Span``, and its record encoding.

Why not the SDK's span: on the RPC hot path every microsecond shows, and the
SDK builds a ``SpanContext``, a ``BoundedAttributes``, a lock and a
``ReadableSpan`` copy per span. Here a span holds only what differs from one
span to the next (ids as the hex the record and ``traceparent`` use, times,
status); what every span of one call site shares (name, kind, process, peer,
base attributes) lives once in a :class:`SpanSite`, encoded to JSON once. The
API objects (``SpanContext``, integer ids) are built only when someone asks.
Rarely set fields (status, events, attributes...) are class-level defaults, so
a span that ends well never writes them.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, TraceState

from callscope_contract import SCHEMA_VERSION

from ._native import hotpath

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "Ended",
    "Resource",
    "Span",
    "SpanSink",
    "SpanSite",
    "encode_ended",
    "encode_ended_python",
    "encode_span",
    "perf_ns",
    "sync_clock",
    "wall_ns",
]

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_EMPTY_STATE = TraceState()
KIND_NAMES = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")  # SpanKind values

# -- one clock on the hot path ---------------------------------------------------------
# A span reads the monotonic clock once at start and once at end; its wall-clock start
# is that reading plus an offset, re-read by the export thread every round (so a
# stepped wall clock is followed within a fraction of a second).
perf_ns = _perf_ns = time.perf_counter_ns
_wall_offset_ns = time.time_ns() - _perf_ns()


def sync_clock() -> None:
    """Re-read the offset between the wall clock and the monotonic clock."""
    global _wall_offset_ns
    _wall_offset_ns = time.time_ns() - _perf_ns()
    if hotpath is not None:
        hotpath.set_wall_offset(_wall_offset_ns)


def wall_ns() -> int:
    """Now, in ns since the epoch, from the monotonic clock (what span times use)."""
    return _perf_ns() + _wall_offset_ns


class SpanSink(Protocol):
    """Where ended spans go (the export pipeline); must never block or raise. It may answer
    ``False`` when it could not take the span (a full queue)."""

    def on_end(self, span: Span | Ended) -> bool | None: ...


@dataclass(frozen=True, slots=True)
class Resource:
    """Who makes the spans: service name, instance (``host:port`` or ``host:pid``), host."""

    service: str
    instance: str
    host: str


class SpanSite:
    """What all spans of one call site share: where they go, their name and kind, the
    process and the peer, and base attributes (never changed once spans use them).

    Its JSON fields are encoded once: by the RPC interceptors when they make the site, else
    by the export thread on its first span.
    """

    __slots__ = (
        "attributes",
        "fields",
        "head",
        "instance",
        "kind",
        "name",
        "peer_instance",
        "peer_service",
        "resource",
        "sink",
    )

    def __init__(
        self,
        sink: SpanSink,
        resource: Resource,
        name: str,
        kind: str,
        *,
        instance: str = "",
        peer_service: str = "",
        peer_instance: str = "",
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.sink = sink
        self.resource = resource
        self.name = name
        self.kind = kind
        self.instance = instance or resource.instance
        self.peer_service = peer_service
        self.peer_instance = peer_instance
        self.attributes = dict(attributes) if attributes else None
        self.head: str | None = None  # the record's site fields, as JSON members
        self.fields: str | None = None  # head plus the attributes

    def replace(self, **changes: Any) -> SpanSite:
        """A copy with some fields changed (a span renamed or re-addressed after start)."""
        values = {
            "instance": self.instance,
            "peer_service": self.peer_service,
            "peer_instance": self.peer_instance,
            "attributes": self.attributes,
            "name": self.name,
            "kind": self.kind,
            **changes,
        }
        name, kind = values.pop("name"), values.pop("kind")
        return SpanSite(self.sink, self.resource, name, kind, **values)

    def _encode(self) -> str:
        res = self.resource
        head = _json(
            {
                "name": self.name,
                "kind": self.kind,
                "service": res.service,
                "host": res.host,
                "instance": self.instance,
                "peer_service": self.peer_service,
                "peer_instance": self.peer_instance,
            }
        )[1:-1]
        attributes = self.attributes
        self.fields = f'{head},"attributes":{_json(attributes) if attributes else "{}"}'
        self.head = head
        return self.fields

    def __repr__(self) -> str:
        return f"SpanSite({self.kind} {self.name!r} peer={self.peer_instance!r})"


class _SpanFields:
    """The fields of a span, for the pure-Python path: what every span sets are slots,
    the rest are class attributes written per span only when they change. With the C hot
    path, its ``SpanCore`` holds the same fields as C members (defaults set when the span
    is made)."""

    __slots__ = (
        "duration_ns",
        "kpi",  # the call's KPI counters, when someone else is to close them
        "parent_hex",
        "sampled",
        "site",
        "span_hex",
        "start_ns",
        "t0",
        "trace_hex",
    )

    attributes: dict[str, Any] | None = None
    events: list[tuple[int, str, Mapping[str, Any]]] | None = None
    status = "OK"
    error_code = ""
    error_message = ""
    trace_state = ""
    token: Any = None  # what the server interceptor set in the context
    entry: Any = None  # the interceptor's site entry the span was made for
    _context: SpanContext | None = None


_SpanBase: type = hotpath.SpanCore if hotpath is not None else _SpanFields


class Span(_SpanBase, trace.Span):  # type: ignore[misc]
    """A span that records cheaply; exported when sampled or when it ends in error.

    ``attributes`` are the span's own; the site's base attributes are merged at export.
    """

    site: SpanSite
    trace_hex: str
    span_hex: str
    parent_hex: str
    sampled: bool
    t0: int
    start_ns: int
    duration_ns: int
    trace_state: str
    status: str
    error_code: str
    error_message: str
    attributes: dict[str, Any] | None
    events: list[tuple[int, str, Mapping[str, Any]]] | None
    kpi: Any
    token: Any
    entry: Any
    _context: SpanContext | None

    def __init__(
        self,
        site: SpanSite,
        trace_hex: str,
        span_hex: str,
        parent_hex: str = "",
        sampled: bool = True,
        trace_state: str = "",
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.site = site
        self.trace_hex = trace_hex
        self.span_hex = span_hex
        self.parent_hex = parent_hex
        self.sampled = bool(sampled)
        self.duration_ns = -1
        self.kpi = None
        if trace_state:
            self.trace_state = trace_state
        if attributes:
            self.attributes = attributes
        self.t0 = t0 = _perf_ns()
        self.start_ns = t0 + _wall_offset_ns

    # -- ids and site fields, as the rest of the API and the record name them ----
    @property
    def trace_id(self) -> int:
        return int(self.trace_hex, 16)

    @property
    def span_id(self) -> int:
        return int(self.span_hex, 16)

    @property
    def parent_id(self) -> int:
        return int(self.parent_hex, 16) if self.parent_hex else 0

    @property
    def name(self) -> str:
        return self.site.name

    @property
    def kind(self) -> str:
        return self.site.kind

    @property
    def resource(self) -> Resource:
        return self.site.resource

    @property
    def instance(self) -> str:
        return self.site.instance

    @instance.setter
    def instance(self, value: str) -> None:
        self.site = self.site.replace(instance=value)

    @property
    def peer_service(self) -> str:
        return self.site.peer_service

    @peer_service.setter
    def peer_service(self, value: str) -> None:
        self.site = self.site.replace(peer_service=value)

    @property
    def peer_instance(self) -> str:
        return self.site.peer_instance

    @peer_instance.setter
    def peer_instance(self, value: str) -> None:
        self.site = self.site.replace(peer_instance=value)

    # -- the OpenTelemetry API ---------------------------------------------
    def get_span_context(self) -> SpanContext:
        ctx = self._context
        if ctx is None:
            ctx = self._context = SpanContext(
                int(self.trace_hex, 16),
                int(self.span_hex, 16),
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
        attributes = self.attributes
        if attributes is None:
            self.attributes = {key: value}
        else:
            attributes[key] = value

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        event = ((timestamp or wall_ns()) // 1000, name, attributes or {})
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
        self.site = self.site.replace(name=name)

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
            self.duration_ns = _perf_ns() - self.t0
        else:
            self.duration_ns = max(0, end_time - self.start_ns)
        if self.sampled or self.status == "ERROR":
            self.site.sink.on_end(self)

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
        now = wall_ns() // 1000
        batch = [(now, name, attrs) for name, attrs in events]
        if self.events is None:
            self.events = batch
        else:
            self.events.extend(batch)

    def __repr__(self) -> str:
        return f"Span({self.kind} {self.name!r} {self.trace_hex}/{self.span_hex})"


# -- the span record (instrument.model) as JSON ------------------------------------------
try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # optional: the stdlib path below is the fallback
    _orjson_dumps = None  # type: ignore[assignment]

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode  # ASCII out
_OK = '"status":"OK","error_code":"","error_message":"","events":[],'


def _json(value: Any) -> str:
    """JSON text of ``value``: orjson when installed (and able), else the stdlib."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value, default=str).decode()
        except TypeError:  # e.g. an integer beyond 64 bits: the stdlib copes
            pass
    return _dumps(value)


# -- what the export thread receives -------------------------------------------------
Ended = tuple[str | None, str, str, str, int, int, tuple[str, ...] | None]
"""A plain span that ended: (site fields as JSON members or None when only its KPIs are
wanted, trace id, span id, parent span id, start ns, duration ns, KPI key or None).

Why a tuple and not the span: the queue holds spans for up to a flush interval,
long enough for the cyclic garbage collector to promote them to the old
generations, which every full collection walks. A tuple of strings and integers
is untracked by the collector the first time it sees it, and is smaller than a
span. (Measured over 120k traced echo calls in one process: full collections
6 → 4; the change in CPU per call was within the machine's noise.)
"""


def encode_ended_python(item: Ended) -> bytes:
    """The span record of a plain span (see :data:`Ended`) as JSON bytes."""
    fields, trace_hex, span_hex, parent_hex, start_ns, duration_ns, _ = item
    return _record(trace_hex, span_hex, parent_hex, start_ns, duration_ns, _OK, fields)  # type: ignore[arg-type]


encode_ended: Callable[[Ended], bytes] = encode_ended_python
if hotpath is not None:  # the same record, from C (tests check they agree)
    hotpath.set_schema(SCHEMA_VERSION)
    hotpath.set_wall_offset(_wall_offset_ns)
    encode_ended = hotpath.encode_ended


def _record(
    trace_hex: str,
    span_hex: str,
    parent_hex: str,
    start_ns: int,
    duration_ns: int,
    status: str,
    fields: str,
) -> bytes:
    return (
        f'{{"schema":{SCHEMA_VERSION},"trace_id":"{trace_hex}","span_id":"{span_hex}",'
        f'"parent_span_id":"{parent_hex}","start_us":{start_ns // 1000},'
        f'"duration_us":{duration_ns // 1000},{status}{fields}}}'
    ).encode()


def encode_span(span: Span) -> bytes:
    """The span record of :mod:`instrument.model` as JSON bytes, built straight from the span.

    Runs once per exported span on the export thread, holding the GIL the event loop
    also wants. The site's fields are JSON already; a span that ended well with no
    events or attributes of its own is one string format.
    """
    site = span.site
    fields = site.fields or site._encode()
    attributes = span.attributes
    if attributes:
        base = site.attributes
        merged = {**base, **attributes} if base else attributes
        fields = f'{site.head},"attributes":{_json(merged)}'
    if span.events is None and span.status == "OK" and not (span.error_code or span.error_message):
        status = _OK
    else:
        status = _status_fields(span)
    return _record(
        span.trace_hex, span.span_hex, span.parent_hex, span.start_ns, span.duration_ns,
        status, fields,
    )  # fmt: skip


def _status_fields(span: Span) -> str:
    events = span.events
    encoded = (
        _json([{"time_us": t, "name": n, "attributes": a} for t, n, a in events])
        if events
        else "[]"
    )
    return (
        f'"status":"{span.status}","error_code":{_json(span.error_code)},'
        f'"error_message":{_json(span.error_message)},"events":{encoded},'
    )


def record_of(span: Span) -> dict[str, Any]:
    """The span record as a plain dict: the reference :func:`encode_span` must agree with."""
    site = span.site
    return {
        "schema": SCHEMA_VERSION,
        "trace_id": span.trace_hex,
        "span_id": span.span_hex,
        "parent_span_id": span.parent_hex,
        "name": site.name,
        "kind": site.kind,
        "service": site.resource.service,
        "host": site.resource.host,
        "instance": site.instance,
        "peer_service": site.peer_service,
        "peer_instance": site.peer_instance,
        "start_us": span.start_ns // 1000,
        "duration_us": span.duration_ns // 1000,
        "status": span.status,
        "error_code": span.error_code,
        "error_message": span.error_message,
        "attributes": {**(site.attributes or {}), **(span.attributes or {})},
        "events": [{"time_us": t, "name": n, "attributes": a} for t, n, a in span.events or ()],
    }
