"""The span record: one finished span as the pipeline stores it (DESIGN §3.3).

Spans travel as one JSON object per message on ``callscope.spans``, keyed by
``trace_id``. ``service``/``instance``/``host`` describe the process that made
the span (``CALLSCOPE_SERVICE_NAME``, its address, its host name);
``peer_service`` is the other side's service name when it is known (a server
learns its caller's from the call), otherwise the RPC service called;
``peer_instance`` is the other side's ``host:port``. Times are microseconds:
``start_us`` since the Unix epoch, ``duration_us`` on a monotonic clock.
``links`` (optional) are OpenTelemetry span links: other spans this one follows from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from . import _checks as check
from ._checks import SCHEMA_VERSION, ValidationError

__all__ = ["KIND_NAMES", "STATUSES", "SpanEvent", "SpanLink", "SpanRecord", "decode_span"]

KIND_NAMES = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUSES = ("OK", "ERROR")


@dataclass(slots=True)
class SpanEvent:
    """Something that happened during a span: a retry, a failover, a breaker opening."""

    time_us: int
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SpanLink:
    """A causal link to a span of another (or the same) trace, e.g. a batch consumer's
    link to each message's producer span (OpenTelemetry's span links)."""

    trace_id: str
    span_id: str
    trace_state: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SpanRecord:
    """One finished span as the pipeline stores it (DESIGN §3.3)."""

    trace_id: str
    span_id: str
    name: str
    kind: str
    service: str
    start_us: int
    duration_us: int
    parent_span_id: str = ""
    instance: str = ""
    host: str = ""
    peer_service: str = ""
    peer_instance: str = ""
    status: str = "OK"
    error_code: str = ""
    error_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    links: list[SpanLink] = field(default_factory=list)  # optional: absent means none
    schema: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Any) -> SpanRecord:
        """Validate a decoded JSON object; :class:`ValidationError` names the bad field."""
        data = check.obj(data, "span")
        version = check.schema(data)
        events = _events(data.get("events"))
        status = check.choice(data, "status", STATUSES)
        return cls(
            trace_id=check.hex_id(data, "trace_id", check.HEX32, check.ZERO32, required=True),
            span_id=check.hex_id(data, "span_id", check.HEX16, check.ZERO16, required=True),
            parent_span_id=check.hex_id(
                data, "parent_span_id", check.HEX16, check.ZERO16, required=False
            ),
            name=check.text(data, "name"),
            kind=check.choice(data, "kind", KIND_NAMES),
            service=check.text(data, "service"),
            instance=check.text(data, "instance", required=False),
            host=check.text(data, "host", required=False),
            peer_service=check.text(data, "peer_service", required=False),
            peer_instance=check.text(data, "peer_instance", required=False),
            start_us=check.count(data, "start_us"),
            duration_us=check.count(data, "duration_us"),
            status=status,
            error_code=check.text(data, "error_code", required=False),
            error_message=check.text(data, "error_message", required=False),
            attributes=check.attributes(data.get("attributes"), "attributes"),
            events=events,
            links=_links(data.get("links")),
            schema=version,
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> SpanRecord:
        return cls.from_dict(check.loads(raw))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.links:  # optional: absent means none, as the C path and the stores write it
            del data["links"]
        return data

    def to_json(self) -> bytes:
        return check.dumps(self.to_dict())


def _events(events: Any) -> list[SpanEvent]:
    if not events:
        return []
    if not isinstance(events, list):
        raise ValidationError("events", "must be a list")
    parsed = []
    for i, event in enumerate(events):
        where = f"events[{i}]."
        event = check.obj(event, f"events[{i}]")
        parsed.append(
            SpanEvent(
                check.count(event, "time_us", prefix=where),
                check.text(event, "name", prefix=where),
                check.attributes(event.get("attributes"), where + "attributes"),
            )
        )
    return parsed


def _links(links: Any) -> list[SpanLink]:
    if not links:
        return []
    if not isinstance(links, list):
        raise ValidationError("links", "must be a list")
    parsed = []
    for i, link in enumerate(links):
        where = f"links[{i}]"
        link = check.obj(link, where)
        try:
            trace_id = check.hex_id(link, "trace_id", check.HEX32, check.ZERO32, required=True)
            span_id = check.hex_id(link, "span_id", check.HEX16, check.ZERO16, required=True)
        except ValidationError as exc:
            raise ValidationError(f"{where}.{exc.field}", exc.problem) from None
        parsed.append(
            SpanLink(
                trace_id,
                span_id,
                check.text(link, "trace_state", required=False, prefix=where + "."),
                check.attributes(link.get("attributes"), where + ".attributes"),
            )
        )
    return parsed


def decode_span(raw: bytes | str) -> SpanRecord:
    """Parse and validate one message of ``callscope.spans``."""
    return SpanRecord.from_json(raw)
