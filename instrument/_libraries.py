"""Turn on the OpenTelemetry instrumentations installed in this environment (``requests``,
database drivers...), so their spans join the RPC traces, as ``opentelemetry-instrument``
does: each package registers an ``opentelemetry_instrumentor`` entry point."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

__all__ = ["instrument_libraries"]

log = logging.getLogger("callscope.instrument")


def instrument_libraries(tracer_provider: Any, which: str = "all") -> list[str]:
    """Instrument ``which`` (``all``, ``none`` or names separated by commas); returns the
    names turned on. A library that fails is logged and skipped."""
    if which.strip().lower() in ("", "none", "0", "off"):
        return []
    wanted = None if which.strip().lower() == "all" else {w.strip() for w in which.split(",")}
    done = []
    for ep in entry_points(group="opentelemetry_instrumentor"):
        if wanted is not None and ep.name not in wanted:
            continue
        try:
            instrumentor = ep.load()()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(
                    tracer_provider=tracer_provider, raise_exception_on_conflict=True
                )
            done.append(ep.name)
        except Exception as exc:  # a missing optional dependency, a version conflict...
            log.debug("callscope: not instrumenting %s: %s", ep.name, exc)
    return done
