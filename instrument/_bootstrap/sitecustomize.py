"""Loaded by Python at start-up when ``callscope run`` puts this folder on ``PYTHONPATH``.

It imports :mod:`instrument.auto`, then runs the ``sitecustomize`` this one hides, if any.
"""

from __future__ import annotations

import importlib.util
import os
import sys

try:
    import instrument.auto  # noqa: F401
except ImportError as exc:  # another interpreter, without callscope installed
    sys.stderr.write(f"callscope run: tracing is off, cannot import instrument: {exc}\n")

_here = os.path.dirname(os.path.abspath(__file__))
for _entry in sys.path:
    _path = os.path.join(_entry or os.getcwd(), "sitecustomize.py")
    if os.path.abspath(_entry or os.getcwd()) != _here and os.path.isfile(_path):
        _spec = importlib.util.spec_from_file_location("_callscope_next_sitecustomize", _path)
        if _spec is not None and _spec.loader is not None:
            _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
        break
