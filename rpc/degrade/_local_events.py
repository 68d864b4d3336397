"""Decisions taken in guarded local code, handed to whoever traces the process.

A remote call's decisions ride its :class:`~rpc.Invocation` to the tracing
interceptors. A :func:`~rpc.degrade.guarded` function has no invocation, and ``rpc``
may not import the tracing layer above it, so the tracer registers a sink here
(``instrument`` does on install): it puts each decision on the current span and counts
it against the RPC call the code ran in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["LocalEventSink", "add_local_event_sink", "local_event"]

LocalEventSink = Callable[[str, Mapping[str, Any]], None]

log = logging.getLogger("callscope.rpc.degrade")
_sinks: tuple[LocalEventSink, ...] = ()
_lock = threading.Lock()


def add_local_event_sink(sink: LocalEventSink) -> Callable[[], None]:
    """Tell ``sink(name, attributes)`` of every local decision; returns its removal."""
    global _sinks
    with _lock:
        _sinks = (*_sinks, sink)

    def remove() -> None:
        global _sinks
        with _lock:
            _sinks = tuple(s for s in _sinks if s is not sink)

    return remove


def local_event(name: str, **attributes: Any) -> None:
    """A decision of guarded code (a degraded answer, a breaker's change of state).

    A failing sink is logged and skipped: tracing must never change what the code does.
    """
    for sink in _sinks:
        try:
            sink(name, attributes)
        except Exception:
            log.exception("a local event sink failed on %s", name)
