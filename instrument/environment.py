"""Every ``CALLSCOPE_*`` variable, re-exported from :mod:`callscope_contract.environment`.

:func:`instrument.Settings.from_env` is the only reader of the instrumentation's
variables; everything else takes a :class:`~instrument.Settings`, so tests and
programs can configure in code. The one exception is ``CALLSCOPE_NATIVE``, read once
when ``instrument`` is imported: it picks the classes spans and KPI counters are made of.
"""

from __future__ import annotations

from callscope_contract.environment import *  # noqa: F403
from callscope_contract.environment import __all__ as __all__
