"""What ``callscope run -- cmd ...`` changes in the environment of the command it starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["BOOTSTRAP_DIR", "launch_environment"]

BOOTSTRAP_DIR = str(Path(__file__).resolve().parent / "_bootstrap")


def launch_environment(
    base: Mapping[str, str] | None = None, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) plus ``settings`` (``CALLSCOPE_*``
    values) and the bootstrap folder first on ``PYTHONPATH``, whose ``sitecustomize``
    imports :mod:`instrument.auto` in every Python process started with it."""
    environ = dict(os.environ if base is None else base)
    environ.update({k: v for k, v in (settings or {}).items() if v is not None})
    paths = [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if BOOTSTRAP_DIR not in paths:
        paths.insert(0, BOOTSTRAP_DIR)
    # The package itself must stay importable when it is not installed in site-packages.
    package_root = str(Path(BOOTSTRAP_DIR).parents[1])
    if package_root not in paths:
        paths.append(package_root)
    environ["PYTHONPATH"] = os.pathsep.join(paths)
    return environ
