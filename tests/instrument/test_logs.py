"""Log correlation: records made inside a span carry its trace and span ids."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from instrument import (
    DEFAULT_LOG_FORMAT,
    Instrumentation,
    TraceContextFilter,
    disable_log_correlation,
    enable_log_correlation,
)


@pytest.fixture
def stream_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(DEFAULT_LOG_FORMAT))
    logger = logging.getLogger("test.instrument.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_record_factory_stamps_every_record(
    tracing: Instrumentation, stream_logger: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = stream_logger
    enable_log_correlation(set_default_format=False)
    try:
        logger.info("outside")
        with tracing.tracer.start_as_current_span("op") as span:
            logger.info("inside")
    finally:
        disable_log_correlation()
    ctx = span.get_span_context()
    outside, inside = stream.getvalue().splitlines()
    assert "[trace_id=0 span_id=0] outside" in outside
    assert f"[trace_id={ctx.trace_id:032x} span_id={ctx.span_id:016x}] inside" in inside


def test_filter_on_one_handler(
    tracing: Instrumentation, stream_logger: tuple[logging.Logger, io.StringIO]
) -> None:
    logger, stream = stream_logger
    logger.handlers[0].addFilter(TraceContextFilter())
    with tracing.tracer.start_as_current_span("op") as span:
        logger.warning("hello")
    assert f"trace_id={span.get_span_context().trace_id:032x}" in stream.getvalue()


def test_disable_restores_the_factory() -> None:
    before = logging.getLogRecordFactory()
    enable_log_correlation(set_default_format=False)
    enable_log_correlation(set_default_format=False)  # idempotent
    assert logging.getLogRecordFactory() is not before
    disable_log_correlation()
    assert logging.getLogRecordFactory() is before
