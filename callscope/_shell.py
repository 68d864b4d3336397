"""How the user can type ``callscope`` in their shell, for hints that work when pasted."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def callscope_command() -> str:
    """``callscope`` when it is on PATH (an activated venv), else the script's path
    (``.venv/bin/callscope`` from the checkout): the venv is often not activated."""
    script = _beside_python("callscope")
    found = shutil.which("callscope")
    if found and os.path.realpath(found) == os.path.realpath(script):
        return "callscope"
    return script


def activate_command() -> str:
    """The shell command that activates the environment callscope runs in."""
    return f". {_beside_python('activate')}"


def _beside_python(name: str) -> str:
    path = Path(sys.executable).with_name(name)  # not resolved: a venv's python is a link
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
