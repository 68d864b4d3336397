"""One OTLP export, whichever transport carried it: decode, bound, hand over, wait, answer.

The receivers (:mod:`._http` for OTLP/HTTP, :mod:`._grpc` for OTLP/gRPC) only move bytes
and map an :class:`Answer` to their status codes (the OTLP specification's table):

=============  ==========================  ============================================
outcome        HTTP                        gRPC
=============  ==========================  ============================================
OK             200 (partial success lists  OK (``partial_success``)
               the spans not stored)
INVALID        400                         INVALID_ARGUMENT
TOO_LARGE      413                         RESOURCE_EXHAUSTED (no retry info: final)
UNSUPPORTED    415                         --
BUSY           503 + Retry-After           RESOURCE_EXHAUSTED + RetryInfo
UNAVAILABLE    503 + Retry-After           UNAVAILABLE + RetryInfo
=============  ==========================  ============================================

OK is answered only once every span is stored or dead-lettered (see :mod:`._otlp_source`).
"""

from __future__ import annotations

import asyncio
import enum
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ._config import CollectorConfig
from ._metrics import CollectorMetrics
from ._otlp import OtlpError, OtlpTooLarge, decode_request, otlp_spans
from ._otlp_body import BoundedBody, ByteBudget
from ._otlp_source import OtlpSource, Ticket, messages_of

__all__ = ["Answer", "OtlpIntake", "Outcome"]

DECODE_THREADS = 2


class Outcome(enum.Enum):
    OK = "ok"
    INVALID = "invalid"
    TOO_LARGE = "too_large"
    UNSUPPORTED = "unsupported"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


@dataclass(slots=True)
class Answer:
    outcome: Outcome
    message: str = ""
    rejected: list[str] = field(default_factory=list)
    retry_after_s: int = 0


class OtlpIntake:
    """Shared by the receivers of one collector; thread-safe."""

    def __init__(
        self, source: OtlpSource, config: CollectorConfig, metrics: CollectorMetrics
    ) -> None:
        self.source, self.config, self.metrics = source, config, metrics
        self.budget = ByteBudget(config.otlp_max_buffered_bytes)
        self._decoders = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="otlp-decode")

    def body(self, encoding: str) -> BoundedBody:
        """A bounded, decompressing collector for one request's body."""
        cfg = self.config
        return BoundedBody(
            encoding, cfg.otlp_max_body_bytes, cfg.otlp_max_decompressed_bytes, self.budget
        )

    def accept(self, body: bytes, content_type: str) -> Ticket | Answer:
        """Decode and queue the spans (CPU-bound: off any event loop); an answer when done."""
        try:
            request = decode_request(body, content_type)
            results = otlp_spans(request, self.config.otlp_max_spans)
        except OtlpTooLarge as exc:
            return self.count(Answer(Outcome.TOO_LARGE, str(exc)))
        except OtlpError as exc:
            return self.count(Answer(Outcome.INVALID, str(exc)))
        if not results:
            return self.count(Answer(Outcome.OK))
        ticket = self.source.submit(messages_of(results))
        if ticket is None:
            return self.count(Answer(Outcome.BUSY, "collector busy; retry", retry_after_s=1))
        return ticket

    def settled(self, ticket: Ticket, stored: bool) -> Answer:
        if not stored:
            message = f"spans not stored within {self.config.otlp_ack_timeout_s:g}s; retry"
            return self.count(Answer(Outcome.UNAVAILABLE, message, retry_after_s=2))
        return self.count(Answer(Outcome.OK, rejected=ticket.rejected))

    def export(self, body: bytes, content_type: str) -> Answer:
        """The whole export for a receiver that may block (a gRPC worker thread)."""
        accepted = self.accept(body, content_type)
        if isinstance(accepted, Answer):
            return accepted
        return self.settled(accepted, accepted.wait(self.config.otlp_ack_timeout_s))

    async def export_async(self, body: bytes, content_type: str) -> Answer:
        """The whole export for a receiver on an event loop: decoding runs off the loop."""
        loop = asyncio.get_running_loop()
        accepted = await loop.run_in_executor(self._decoders, self.accept, body, content_type)
        if isinstance(accepted, Answer):
            return accepted
        stored = await accepted.wait_async(self.config.otlp_ack_timeout_s)
        return self.settled(accepted, stored)

    def count(self, answer: Answer) -> Answer:
        self.metrics.add("otlp_requests", 1, answer.outcome.value)
        return answer

    def close(self) -> None:
        self._decoders.shutdown(wait=False, cancel_futures=True)
