"""OTLP traces (``ExportTraceServiceRequest``) into span records, from JSON or protobuf.

JSON follows the OTLP/HTTP encoding (lowerCamelCase keys, hex ids, 64-bit numbers as
strings or numbers; base64 ids, as a generic protobuf JSON printer writes them, are
accepted too). Protobuf bodies are decoded with ``opentelemetry-proto``. A span that
cannot become a valid record is returned as a rejection with the field and the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from callscope_contract import SpanRecord, ValidationError

from ._records import Rejection, rejection_for

__all__ = ["OtlpError", "decode_request", "otlp_spans"]

_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class OtlpError(ValueError):
    """The body as a whole is not an OTLP traces request (HTTP 400)."""


def decode_request(body: bytes, content_type: str) -> dict[str, Any]:
    """The request as the OTLP JSON object, whichever encoding came in."""
    if "protobuf" in content_type:
        try:
            from google.protobuf.json_format import MessageToDict
            from google.protobuf.message import DecodeError
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest,
            )
        except ImportError as exc:  # pragma: no cover - a runtime dependency
            raise OtlpError(f"protobuf OTLP needs opentelemetry-proto: {exc}") from None
        try:
            request = ExportTraceServiceRequest.FromString(body)
        except DecodeError as exc:
            raise OtlpError(f"not an OTLP protobuf ExportTraceServiceRequest: {exc}") from None
        return MessageToDict(request)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise OtlpError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OtlpError("an OTLP request is a JSON object")
    return data


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
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return _attributes(v["kvlistValue"].get("values", []))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attributes(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        kv["key"]: _value(kv.get("value")) for kv in items if isinstance(kv, dict) and "key" in kv
    }


def _kind(value: Any) -> str:
    if isinstance(value, str) and value.startswith("SPAN_KIND_"):
        name = value.removeprefix("SPAN_KIND_")
        return "INTERNAL" if name == "UNSPECIFIED" else name
    try:
        return _KINDS.get(int(value or 0), "INTERNAL")
    except (TypeError, ValueError):
        return str(value)


def _is_error(status: Any) -> bool:
    code = status.get("code") if isinstance(status, dict) else None
    return code in (2, "2", "STATUS_CODE_ERROR")


def _peer(attrs: dict[str, Any]) -> str:
    for host_key, port_key in (
        ("server.address", "server.port"),
        ("net.peer.name", "net.peer.port"),
    ):
        if host_key in attrs:
            port = attrs.get(port_key)
            return f"{attrs[host_key]}:{port}" if port is not None else str(attrs[host_key])
    return ""


def _span(span: dict[str, Any], resource: dict[str, Any], scope: str) -> dict[str, Any]:
    attrs = _attributes(span.get("attributes"))
    if scope:
        attrs.setdefault("otel.scope.name", scope)
    start_ns = int(span.get("startTimeUnixNano") or 0)
    end_ns = int(span.get("endTimeUnixNano") or 0)
    status = span.get("status") or {}
    error = _is_error(status)
    return {
        "schema": 1,
        "trace_id": _id(span.get("traceId"), 16),
        "span_id": _id(span.get("spanId"), 8),
        "parent_span_id": _id(span.get("parentSpanId"), 8),
        "name": span.get("name") or "",
        "kind": _kind(span.get("kind")),
        "service": str(resource.get("service.name") or "unknown_service"),
        "instance": str(resource.get("service.instance.id") or ""),
        "host": str(resource.get("host.name") or ""),
        "peer_service": str(attrs.get("peer.service") or ""),
        "peer_instance": _peer(attrs),
        "start_us": start_ns // 1000,
        "duration_us": max(0, end_ns - start_ns) // 1000,
        "status": "ERROR" if error else "OK",
        "error_code": str(attrs.get("error.type") or ("ERROR" if error else "")),
        "error_message": str(status.get("message") or "") if error else "",
        "attributes": attrs,
        "events": [
            {"time_us": int(e.get("timeUnixNano") or 0) // 1000, "name": e.get("name") or "",
             "attributes": _attributes(e.get("attributes"))}
            for e in span.get("events") or []
        ],
    }  # fmt: skip


def otlp_spans(request: dict[str, Any]) -> list[tuple[dict[str, Any], SpanRecord | Rejection]]:
    """Each OTLP span (as our dict) with its record, or the rejection saying why not."""
    out: list[tuple[dict[str, Any], SpanRecord | Rejection]] = []
    for rs in request.get("resourceSpans") or []:
        resource = _attributes((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            scope = (ss.get("scope") or ss.get("instrumentationLibrary") or {}).get("name", "")
            for span in ss.get("spans") or []:
                try:
                    data = _span(span, resource, scope)
                except (TypeError, ValueError, AttributeError) as exc:
                    out.append(({"otlp": str(span)[:2000]}, Rejection("OTLP_INVALID", str(exc))))
                    continue
                try:
                    out.append((data, SpanRecord.from_dict(data)))
                except ValidationError as exc:
                    out.append((data, rejection_for(exc)))
    return out
