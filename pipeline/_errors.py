"""The pipeline's one error type, with stable codes a user can act on.

``BAD_SOURCE``       a span source URL that names no known source, or a malformed one
``BAD_WINDOW``       a time window that is empty, reversed, negative or not a time
``KAFKA_SOURCE_MISSING``  the Spark session has no Kafka source (its jars are missing)
``BAD_OPTION``       a job option out of range (a top-N of 0, a NaN threshold, ...)
"""

from __future__ import annotations

__all__ = ["PipelineError"]


class PipelineError(Exception):
    """A pipeline job cannot run as asked; ``code`` says why (see the module docstring)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
