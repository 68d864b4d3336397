"""The OpenTelemetry context on the hot path: one ``ContextVar`` read, one set, one reset.

The API's functions (``get_current_span``, ``attach``, ``set_span_in_context``...)
each go through two or three Python calls and a copy of the context; per RPC call
that adds up. When the runtime context is the API's default (a ``ContextVar``),
we read and set that variable directly, with the API's own keys, so every
OpenTelemetry user in the process sees exactly what the API would have shown it.
Any other runtime context (``OTEL_PYTHON_CONTEXT``) goes through the API.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.baggage import _BAGGAGE_KEY
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context
from opentelemetry.trace.propagation import _SPAN_KEY

__all__ = [
    "BAGGAGE_KEY",
    "SPAN_KEY",
    "SUPPRESS_KEY",
    "Context",
    "attach",
    "context_var",
    "current",
    "detach",
    "with_span",
]

SPAN_KEY = _SPAN_KEY
BAGGAGE_KEY = _BAGGAGE_KEY
SUPPRESS_KEY = _SUPPRESS_INSTRUMENTATION_KEY

_var: ContextVar[Context] | None = getattr(
    otel_context._RUNTIME_CONTEXT,  # the API's own variable
    "_current_context",
    None,
)
if not isinstance(_var, ContextVar):
    _var = None
context_var = _var  # None when another runtime context is configured

if _var is not None:
    current = _var.get
    attach = _var.set

    def detach(token: Token[Context]) -> None:
        try:
            _var.reset(token)  # type: ignore[union-attr]
        except Exception:  # a token from another context: the API logs and goes on too
            otel_context.detach(token)

else:  # pragma: no cover - another runtime context is configured
    current = otel_context.get_current  # type: ignore[assignment]
    attach = otel_context.attach
    detach = otel_context.detach


def with_span(span: Any, context: Context | None = None) -> Context:
    """``context`` (default: empty) with ``span`` as its current span."""
    if not context:
        return Context({SPAN_KEY: span})
    return Context({**context, SPAN_KEY: span})
