"""callscope pipeline: Spark jobs over the spans -- reading, dependency graphs, latency.

:func:`read_spans` turns any span source (Kafka, a span store, JSON-lines files) into a
DataFrame of the contract's columns, for our jobs and for a user's own in a notebook or
under ``spark-submit``; :func:`spark_session` makes a session set up for them. pyspark is
imported only inside these functions, so ``import pipeline`` is light.
"""

from __future__ import annotations

from ._errors import PipelineError
from ._read import read_spans
from ._session import DEFAULT_MASTER, KAFKA_PACKAGE, spark_session
from ._window import Window, window

__all__ = [
    "DEFAULT_MASTER",
    "KAFKA_PACKAGE",
    "PipelineError",
    "Window",
    "read_spans",
    "spark_session",
    "window",
]
