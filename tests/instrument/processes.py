"""Real processes for the exit-path tests: started with piped text output, never left behind."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .conftest import ROOT


@contextmanager
def running(command: Sequence[str], **options: Any) -> Iterator[subprocess.Popen[str]]:
    """``command`` started in the repository with stdout and stderr piped (text); killed at
    the end if it still runs, its pipes closed either way."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "cwd": ROOT, **options}
    proc = subprocess.Popen(command, text=True, **options)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def first_line(proc: subprocess.Popen[str]) -> str:
    """The next line the process prints (stripped)."""
    assert proc.stdout is not None
    return proc.stdout.readline().strip()
