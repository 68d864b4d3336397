"""OTLP traces (``ExportTraceServiceRequest``) into span records, from JSON or protobuf.

JSON follows the OTLP/HTTP encoding (lowerCamelCase keys, hex ids, 64-bit numbers as
strings or numbers; base64 ids, as a generic protobuf JSON printer writes them, are
accepted too). Protobuf is read straight from the ``opentelemetry-proto`` message (no
detour through a JSON dict). Both readers hand the same primitives to :func:`_span_dict`.

What OTLP carries is kept: span links (the record's ``links``), every resource attribute
(merged into the span's attributes, as the OpenTelemetry Collector's Zipkin exporter
does, a span's own attribute winning; ``service.name``, ``service.instance.id`` and
``host.name`` become the record's ``service``, ``instance`` and ``host``), and non-finite
doubles, stored as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (their proto3
JSON spelling) so every store and ``callscope trace --json`` keep valid JSON.

A request that is not OTLP as a whole raises :class:`OtlpError` (HTTP 400,
``INVALID_ARGUMENT``); one with more spans than allowed :class:`OtlpTooLarge` (413,
``RESOURCE_EXHAUSTED``). A span that cannot become a valid record is returned as a
rejection with the field and the reason (a partial success).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterator
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from callscope_contract import SpanEvent, SpanLink, SpanRecord, ValidationError

from ._records import Rejection, rejection_for

__all__ = ["OtlpError", "OtlpTooLarge", "decode_request", "otlp_spans"]

_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_RECORD_FIELDS = {"service.name", "service.instance.id", "host.name"}
_INT64 = 1 << 63
_SPAN_ERRORS = (TypeError, ValueError, AttributeError, KeyError, OverflowError, RecursionError)

Result = tuple[dict[str, Any] | None, SpanRecord | Rejection]  # no dict: a fast-path record


class OtlpError(ValueError):
    """The body as a whole is not an OTLP traces request (HTTP 400, INVALID_ARGUMENT)."""


class OtlpTooLarge(OtlpError):
    """More spans in one request than the intake takes (HTTP 413, RESOURCE_EXHAUSTED)."""


def decode_request(body: bytes, content_type: str) -> Any:
    """The request, parsed: a protobuf message or the OTLP JSON object."""
    if "protobuf" in content_type:
        try:
            return ExportTraceServiceRequest.FromString(body)
        except (DecodeError, RecursionError) as exc:
            raise OtlpError(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OtlpError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OtlpError("an OTLP request is a JSON object")
    return data


def otlp_spans(request: Any, max_spans: int | None = None) -> list[Result]:
    """Each OTLP span as its record, or as our dict with the rejection saying why not.

    Protobuf spans take a fast path (:func:`_pb_record`) that builds the record straight
    from the message; whatever it does not accept goes the general way (a dict checked by
    ``SpanRecord.from_dict``), which names the problem -- so both paths agree on every span.
    """
    proto = isinstance(request, ExportTraceServiceRequest)
    if proto:
        spans, convert = _proto_spans(request), _pb_span
    else:
        spans, convert = _json_spans(request), _json_span
    out: list[Result] = []
    for span, scope, resource in spans:
        if max_spans is not None and len(out) >= max_spans:
            raise OtlpTooLarge(f"more than {max_spans} spans in one request")
        if proto:
            try:
                out.append((None, _pb_record(span, scope, resource)))
                continue
            except (*_SPAN_ERRORS, ValidationError):
                pass  # the general path below names the problem
        try:
            data = convert(span, scope, resource)
        except _SPAN_ERRORS as exc:
            out.append(({"otlp": "unreadable span"}, Rejection("OTLP_INVALID", str(exc)[:500])))
            continue
        try:
            out.append((data, SpanRecord.from_dict(data)))
        except ValidationError as exc:
            out.append((data, rejection_for(exc)))
    return out


# -- what both encodings share ---------------------------------------------------------------
def _finite(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")


def _int64(x: Any) -> int | str:
    n = int(x)
    return n if -_INT64 <= n < _INT64 else str(n)  # past 64 bits no store can pack it


def _time_ns(x: Any, what: str) -> int:
    n = int(x or 0)
    if not 0 <= n < _INT64:
        raise ValueError(f"{what} out of range: {n}")
    return n


def _peer(attrs: dict[str, Any]) -> str:
    for host_key, port_key in (
        ("server.address", "server.port"),
        ("net.peer.name", "net.peer.port"),
    ):
        if host_key in attrs:
            port = attrs.get(port_key)
            return f"{attrs[host_key]}:{port}" if port is not None else str(attrs[host_key])
    return ""


def _span_dict(
    ids: tuple[str, str, str],
    name: str,
    kind: str,
    times_ns: tuple[int, int],
    status: tuple[bool, str],
    attrs: dict[str, Any],
    events: list[dict[str, Any]],
    links: list[dict[str, Any]],
    resource: dict[str, Any],
) -> dict[str, Any]:
    for key, value in resource.items():
        if key not in _RECORD_FIELDS:
            attrs.setdefault(key, value)
    (start_ns, end_ns), (error, message) = times_ns, status
    data = {
        "schema": 1, "trace_id": ids[0], "span_id": ids[1], "parent_span_id": ids[2],
        "name": name, "kind": kind,
        "service": str(resource.get("service.name") or "unknown_service"),
        "instance": str(resource.get("service.instance.id") or ""),
        "host": str(resource.get("host.name") or ""),
        "peer_service": str(attrs.get("peer.service") or ""),
        "peer_instance": _peer(attrs),
        "start_us": start_ns // 1000,
        "duration_us": max(0, end_ns - start_ns) // 1000,
        "status": "ERROR" if error else "OK",
        "error_code": str(attrs.get("error.type") or ("ERROR" if error else "")),
        "error_message": message if error else "",
        "attributes": attrs,
        "events": events,
    }  # fmt: skip
    if links:
        data["links"] = links
    return data


# -- protobuf ----------------------------------------------------------------------------------
def _pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return _finite(v.double_value)
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _pb_attributes(v.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _pb_attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in items}


def _proto_spans(request: Any) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    for rs in request.resource_spans:
        resource = _pb_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = ss.scope.name
            for span in ss.spans:
                yield span, scope, resource


def _pb_span(span: Any, scope: str, resource: dict[str, Any]) -> dict[str, Any]:
    attrs = _pb_attributes(span.attributes)
    if scope:
        attrs.setdefault("otel.scope.name", scope)
    events = [
        {"time_us": _time_ns(e.time_unix_nano, "event time") // 1000, "name": e.name,
         "attributes": _pb_attributes(e.attributes)}
        for e in span.events
    ]  # fmt: skip
    links = [
        {"trace_id": k.trace_id.hex(), "span_id": k.span_id.hex(), "trace_state": k.trace_state,
         "attributes": _pb_attributes(k.attributes)}
        for k in span.links
    ]  # fmt: skip
    return _span_dict(
        (span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex()),
        span.name,
        _KINDS.get(span.kind, "INTERNAL"),
        (_time_ns(span.start_time_unix_nano, "start"), _time_ns(span.end_time_unix_nano, "end")),
        (span.status.code == 2, span.status.message),
        attrs,
        events,
        links,
        resource,
    )


def _pb_id(raw: bytes, size: int, field: str) -> str:
    if len(raw) != size or not any(raw):
        raise ValidationError(field, "not a valid id")  # the general path names it properly
    return raw.hex()


def _pb_record(span: Any, scope: str, resource: dict[str, Any]) -> SpanRecord:
    """The record of a protobuf span, built directly (what ``from_dict`` would accept and
    return for :func:`_pb_span`'s dict); ValidationError/ValueError for anything else."""
    attrs = _pb_attributes(span.attributes)
    if scope:
        attrs.setdefault("otel.scope.name", scope)
    for key, value in resource.items():
        if key not in _RECORD_FIELDS:
            attrs.setdefault(key, value)
    events = []
    for e in span.events:
        if not e.name:
            raise ValidationError("events.name", "empty")
        time_us = _time_ns(e.time_unix_nano, "event time") // 1000
        events.append(SpanEvent(time_us, e.name, _pb_attributes(e.attributes)))
    links = [
        SpanLink(_pb_id(k.trace_id, 16, "links.trace_id"), _pb_id(k.span_id, 8, "links.span_id"),
                 k.trace_state, _pb_attributes(k.attributes))
        for k in span.links
    ]  # fmt: skip
    parent = span.parent_span_id
    start_ns = _time_ns(span.start_time_unix_nano, "start")
    end_ns = _time_ns(span.end_time_unix_nano, "end")
    error = span.status.code == 2
    service = resource.get("service.name") or "unknown_service"
    name = span.name
    if not name or type(service) is not str:
        raise ValidationError("name", "empty")
    return SpanRecord(
        trace_id=_pb_id(span.trace_id, 16, "trace_id"),
        span_id=_pb_id(span.span_id, 8, "span_id"),
        parent_span_id=_pb_id(parent, 8, "parent_span_id") if parent else "",
        name=name,
        kind=_KINDS.get(span.kind, "INTERNAL"),
        service=service,
        instance=str(resource.get("service.instance.id") or ""),
        host=str(resource.get("host.name") or ""),
        peer_service=str(attrs.get("peer.service") or ""),
        peer_instance=_peer(attrs),
        start_us=start_ns // 1000,
        duration_us=max(0, end_ns - start_ns) // 1000,
        status="ERROR" if error else "OK",
        error_code=str(attrs.get("error.type") or ("ERROR" if error else "")),
        error_message=span.status.message if error else "",
        attributes=attrs,
        events=events,
        links=links,
    )


# -- JSON --------------------------------------------------------------------------------------
def _list(container: dict[str, Any], *keys: str) -> list[Any]:
    """``container[key]`` (the first key present) as a list of objects, or OtlpError."""
    for key in keys:
        value = container.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
            raise OtlpError(f"{key} must be a list of objects")
        return value
    return []


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any, size: int) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if len(value) == size * 2:
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value  # left for the record's validation to name
    return raw.hex()


def _value(v: Any) -> Any:
    """An OTLP ``AnyValue`` as a plain value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "intValue" in v:
        return _int64(v["intValue"])
    if "doubleValue" in v:
        return _finite(float(v["doubleValue"]))
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values") or []]
    if "kvlistValue" in v:
        return _attributes(v["kvlistValue"].get("values"))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        kv["key"]: _value(kv.get("value"))
        for kv in items
        if isinstance(kv, dict) and isinstance(kv.get("key"), str)
    }


def _kind(value: Any) -> str:
    if isinstance(value, str) and value.startswith("SPAN_KIND_"):
        name = value.removeprefix("SPAN_KIND_")
        return "INTERNAL" if name == "UNSPECIFIED" else name
    try:
        return _KINDS.get(int(value or 0), "INTERNAL")
    except (TypeError, ValueError):
        return str(value)


def _json_status(status: Any) -> tuple[bool, str]:
    if not isinstance(status, dict):
        return False, ""
    error = status.get("code") in (2, "2", "STATUS_CODE_ERROR")
    return error, str(status.get("message") or "")


def _json_spans(request: dict[str, Any]) -> Iterator[tuple[Any, str, dict[str, Any]]]:
    for rs in _list(request, "resourceSpans", "resource_spans"):
        resource = _attributes(_obj(rs.get("resource")).get("attributes"))
        for ss in _list(rs, "scopeSpans", "scope_spans", "instrumentationLibrarySpans"):
            scope = _obj(ss.get("scope") or ss.get("instrumentationLibrary")).get("name")
            for span in _list(ss, "spans"):
                yield span, scope if isinstance(scope, str) else "", resource


def _json_span(span: dict[str, Any], scope: str, resource: dict[str, Any]) -> dict[str, Any]:
    attrs = _attributes(span.get("attributes"))
    if scope:
        attrs.setdefault("otel.scope.name", scope)
    events = [
        {"time_us": _time_ns(e.get("timeUnixNano"), "event time") // 1000,
         "name": e.get("name") or "", "attributes": _attributes(e.get("attributes"))}
        for e in _list(span, "events")
    ]  # fmt: skip
    links = [
        {"trace_id": _id(k.get("traceId"), 16), "span_id": _id(k.get("spanId"), 8),
         "trace_state": k.get("traceState") or "", "attributes": _attributes(k.get("attributes"))}
        for k in _list(span, "links")
    ]  # fmt: skip
    return _span_dict(
        (
            _id(span.get("traceId"), 16),
            _id(span.get("spanId"), 8),
            _id(span.get("parentSpanId"), 8),
        ),
        span.get("name") or "",
        _kind(span.get("kind")),
        (
            _time_ns(span.get("startTimeUnixNano"), "start"),
            _time_ns(span.get("endTimeUnixNano"), "end"),
        ),
        _json_status(span.get("status")),
        attrs,
        events,
        links,
        resource,
    )
