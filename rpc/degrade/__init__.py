"""Degradation: circuit breakers, masks pushed from the registry, and guarded local code.

* **Breaker** (consumer, per service, method and provider): ``breaker`` rules in the
  layered settings (code, a file, provider metadata, ``governance/<service>/cluster``)
  open a provider's circuit on its error ratio, slow-call ratio or error count over a
  rolling window; open providers leave the candidates, and when none is left the call
  gets the rules' fallback (a mock, a value, or an error).
* **Mask** (consumer and provider): ``governance/<service>/mask`` switches a service or
  a method to ``null``, ``throw <code>`` or ``mock``, applied live, lifted by deleting it.
* **Business level**: :func:`guarded` puts the same breaker and fallbacks around a
  local function.

Every change of state and every degraded call is an event on the span and a
``governance.<decision>`` KPI counter; :func:`breaker_states` lists the breakers.
"""

from ._breaker import (
    CLOSED,
    DENIED,
    HALF_OPEN,
    OPEN,
    WHILE_CLOSED,
    BreakerBoard,
    CircuitBreaker,
    CircuitOpenError,
    breaker_states,
)
from ._fallback import MOCKS, answer
from ._guarded import LOCAL, guarded
from ._local_events import LocalEventSink, add_local_event_sink, local_event
from ._mask import (
    MaskInterceptor,
    MaskRule,
    MaskTable,
    MaskWatch,
    follow_masks,
    mask_key,
    parse_mask,
    with_mask,
    without_mask,
)
from ._rules import ACTIONS, COUNTED_BY_DEFAULT, BreakerRules, Fallback
from ._window import RollingWindow

__all__ = [
    "ACTIONS",
    "CLOSED",
    "COUNTED_BY_DEFAULT",
    "DENIED",
    "HALF_OPEN",
    "LOCAL",
    "MOCKS",
    "OPEN",
    "WHILE_CLOSED",
    "BreakerBoard",
    "BreakerRules",
    "CircuitBreaker",
    "CircuitOpenError",
    "Fallback",
    "LocalEventSink",
    "MaskInterceptor",
    "MaskRule",
    "MaskTable",
    "MaskWatch",
    "RollingWindow",
    "add_local_event_sink",
    "answer",
    "breaker_states",
    "follow_masks",
    "guarded",
    "local_event",
    "mask_key",
    "parse_mask",
    "with_mask",
    "without_mask",
]
