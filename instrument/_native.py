"""The C hot path (``instrument/_hotpath.c``) when it is built and not turned off.

``CALLSCOPE_NATIVE=0`` turns it off: the pure-Python reference path then runs, with the
same records and counts (the tests run both). Built at install when a C compiler is
present (``setup.py``, an optional extension); without one, Python it is.
"""

from __future__ import annotations

import os
from types import ModuleType

from callscope_contract.environment import CALLSCOPE_NATIVE

__all__ = ["hotpath"]


def _load() -> ModuleType | None:
    if os.environ.get(CALLSCOPE_NATIVE, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from . import _hotpath  # type: ignore[attr-defined]  # the C module, built by setup.py
    except ImportError:
        return None
    os.register_at_fork(after_in_child=_hotpath.reseed)  # forked workers must not share ids
    return _hotpath


hotpath: ModuleType | None = _load()
