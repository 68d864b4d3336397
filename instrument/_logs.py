"""Log correlation: ``trace_id`` and ``span_id`` on every :mod:`logging` record made inside
a span, so a person can go from a trace to its log lines and back (the seed's point:
one TraceID strings together the logs of every node).

:func:`enable_log_correlation` stamps every record through the record factory (it
covers every logger and handler); :class:`TraceContextFilter` does the same for one
handler when a program prefers to opt in there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from opentelemetry import trace

from ._span import Span

__all__ = [
    "DEFAULT_LOG_FORMAT",
    "TraceContextFilter",
    "disable_log_correlation",
    "enable_log_correlation",
]

DEFAULT_LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"
)
NO_TRACE = "0"  # outside a span, as OpenTelemetry's logging instrumentation writes it


def stamp(record: logging.LogRecord) -> None:
    """Set ``record.trace_id`` / ``record.span_id`` (hex) from the current span."""
    span = trace.get_current_span()
    if isinstance(span, Span):
        record.trace_id = span.trace_hex
        record.span_id = span.span_hex
        return
    ctx = span.get_span_context()
    if ctx.is_valid:
        record.trace_id = f"{ctx.trace_id:032x}"
        record.span_id = f"{ctx.span_id:016x}"
    else:
        record.trace_id = record.span_id = NO_TRACE


class TraceContextFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` to each record passing through; never filters out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            stamp(record)
        return True


_previous_factory: Callable[..., logging.LogRecord] | None = None


def enable_log_correlation(set_default_format: bool = True) -> None:
    """Stamp every record made from now on; with no logging configured yet, also set up
    the root logger with :data:`DEFAULT_LOG_FORMAT`. Idempotent."""
    global _previous_factory
    if _previous_factory is None:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            stamp(record)
            return record

        _previous_factory = previous
        logging.setLogRecordFactory(factory)
    if set_default_format and not logging.getLogger().handlers:
        # defaults: records made once correlation is off (at exit, after the final flush)
        # still format, with no trace, instead of a "Logging error" each
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(
            DEFAULT_LOG_FORMAT, defaults={"trace_id": NO_TRACE, "span_id": NO_TRACE}
        ))  # fmt: skip
        logging.basicConfig(handlers=[handler])


def disable_log_correlation() -> None:
    """Put back the record factory that was in place before :func:`enable_log_correlation`."""
    global _previous_factory
    if _previous_factory is not None:
        logging.setLogRecordFactory(_previous_factory)
        _previous_factory = None
