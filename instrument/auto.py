"""``import instrument.auto``: trace and measure this process with no other code change.

Reads the ``CALLSCOPE_*`` variables (:mod:`instrument.environment`), installs the
tracer provider, adds the tracing interceptors to every callscope client and
server created afterwards, enables log correlation and flushes at exit.
``CALLSCOPE_DISABLED=1`` turns it off. A configuration error is logged, never
raised: instrumentation must not stop the service from starting.
"""

from __future__ import annotations

import logging
import os

from callscope_contract import environment

from ._setup import Instrumentation, configure, current

__all__ = ["instrumentation"]

instrumentation: Instrumentation | None = current()

if instrumentation is None and os.environ.get(environment.CALLSCOPE_DISABLED, "") not in (
    "1",
    "true",
    "yes",
):
    try:
        instrumentation = configure(install=True)
    except Exception:
        logging.getLogger("callscope.instrument").exception(
            "callscope: instrumentation is off: it could not be configured"
        )
