"""The Kafka topics of the contract (DESIGN §3.3), each spelled here once.

Exporters, the collector and the pipeline take these as defaults; a deployment
renames them with ``CALLSCOPE_SPANS_TOPIC`` / ``CALLSCOPE_KPIS_TOPIC`` (exporters)
or the collector's options.
"""

from __future__ import annotations

__all__ = ["KPIS_TOPIC", "SPANS_DLQ_TOPIC", "SPANS_TOPIC"]

SPANS_TOPIC = "callscope.spans"
"""Span records, one JSON object per message, keyed by ``trace_id``."""

KPIS_TOPIC = "callscope.kpis"
"""KPI samples, one JSON object per message, keyed by ``service``."""

SPANS_DLQ_TOPIC = "callscope.spans.dlq"
"""Records the collector refused, with the reason in the message headers."""
