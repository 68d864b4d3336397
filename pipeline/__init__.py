"""callscope pipeline: Spark jobs over the spans -- reading, dependency graphs, latency.

:func:`run_batch` computes, per window, the dependency graph (service, instance and
method level), the top callers of each service and the latency of each service and
method, and writes them through each store's ``AnalyticsStore``; :func:`run_stream` does
the same for the edges per tumbling window of a Kafka topic, with each provider
instance's health (:func:`instance_health`) fed back as routing weights.
:func:`compute_weights` turns one window's per-instance health into routing weights
(pure; its rules are in ``pipeline/_weights.py``) and :func:`feed_back` publishes them as
the ``governance/<service>/weights`` document. Alarm rules (:class:`AlarmRule`, from a
JSON file or the registry's ``governance/_global/alarms``) are evaluated per window by an
:class:`AlarmEvaluator` (pure; ``pipeline/_alarms.py``) in both jobs.
:func:`read_spans` turns any span source (Kafka, a span store, JSON-lines files) into a
DataFrame of the contract's columns, for our jobs and for a user's own in a notebook or
under ``spark-submit``; :func:`spark_session` makes a session set up for them. pyspark is
imported only inside these functions, so ``import pipeline`` is light.
"""

from __future__ import annotations

from ._aggregates import PERCENTILE_ACCURACY
from ._alarm_job import AlarmJob
from ._alarm_rules import ALARMS_KEY, METRICS, AlarmRule, load_rules, parse_rules, registry_rules
from ._alarms import AlarmEvaluator, Observation, observations
from ._batch import PIPELINE_APP, BatchResult, run_batch
from ._calls import CALL_COLUMNS, calls
from ._errors import PipelineError
from ._feedback import WEIGHTS_SOURCE, feed_back, weights_document
from ._read import read_spans
from ._session import DEFAULT_MASTER, KAFKA_PACKAGE, spark_session
from ._stream import MAX_DEFAULT_WATERMARK_S, default_trigger_s, default_watermark_s, run_stream
from ._stream_ticks import ticks_topic
from ._stream_windows import instance_health
from ._weights import NEUTRAL, InstanceHealth, WeightDecision, WeightPolicy, compute_weights
from ._window import Window, window

__all__ = [
    "ALARMS_KEY",
    "CALL_COLUMNS",
    "DEFAULT_MASTER",
    "KAFKA_PACKAGE",
    "MAX_DEFAULT_WATERMARK_S",
    "METRICS",
    "NEUTRAL",
    "PERCENTILE_ACCURACY",
    "PIPELINE_APP",
    "WEIGHTS_SOURCE",
    "AlarmEvaluator",
    "AlarmJob",
    "AlarmRule",
    "BatchResult",
    "InstanceHealth",
    "Observation",
    "PipelineError",
    "WeightDecision",
    "WeightPolicy",
    "Window",
    "calls",
    "compute_weights",
    "default_trigger_s",
    "default_watermark_s",
    "feed_back",
    "instance_health",
    "load_rules",
    "observations",
    "parse_rules",
    "read_spans",
    "registry_rules",
    "run_batch",
    "run_stream",
    "spark_session",
    "ticks_topic",
    "weights_document",
    "window",
]
