"""Where records and documents travel: the Kafka topics and the weights' registry key.

Exporters, the collector and the pipeline take these as defaults; a deployment
renames them with ``CALLSCOPE_SPANS_TOPIC`` / ``CALLSCOPE_KPIS_TOPIC`` (exporters)
or the collector's options.
"""

from __future__ import annotations

__all__ = ["KPIS_TOPIC", "SPANS_DLQ_TOPIC", "SPANS_TOPIC", "weights_key"]

SPANS_TOPIC = "callscope.spans"
"""Span records, one JSON object per message, keyed by ``trace_id``."""

KPIS_TOPIC = "callscope.kpis"
"""KPI samples, one JSON object per message, keyed by ``service``."""

SPANS_DLQ_TOPIC = "callscope.spans.dlq"
"""Records the collector refused, with the reason in the message headers."""


def weights_key(service: str) -> str:
    """The registry key of a service's routing-weights document: the pipeline writes it,
    consumers' balancers watch it (format: docs/architecture.md, "The weights document")."""
    return f"governance/{service}/weights"
