"""Start the A → B → C test chain (tests/instrument/apps/chain.py) as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .conftest import ROOT

APP = Path(__file__).resolve().parent / "apps" / "chain.py"
AUTO = "import runpy, sys, instrument.auto; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"  # noqa: E501


def command(role: str, launcher: str) -> list[str]:
    if launcher == "auto":
        return [sys.executable, "-c", AUTO, str(APP), role]
    return [sys.executable, "-m", "callscope", "run", "--", sys.executable, str(APP), role]


@contextmanager
def chain(env: Mapping[str, str], launcher: str = "auto") -> Iterator[subprocess.CompletedProcess]:
    """Run C, then B, then A (which calls down the chain and exits); yields A's result.

    B and C are stopped by closing their stdin, so they exit normally and flush.
    """
    base = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    started: list[subprocess.Popen[str]] = []
    try:
        address = None
        for role, name in (("C", "svc-c"), ("B", "svc-b")):
            args = command(role, launcher) + ([address] if address else [])
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                env={**base, "CALLSCOPE_SERVICE_NAME": name},
            )
            started.append(proc)
            assert proc.stdout is not None
            address = proc.stdout.readline().strip()
            assert address, proc.stderr.read() if proc.stderr else ""
        result = subprocess.run(
            [*command("A", launcher), address],  # type: ignore[list-item]
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**base, "CALLSCOPE_SERVICE_NAME": "svc-a"},
        )
        assert result.returncode == 0, result.stderr
        stderr = []
        for proc in reversed(started):
            _, err = proc.communicate(input="", timeout=30)
            stderr.append(err)
            assert proc.returncode == 0, err
        result.stderr += "".join(stderr)
        yield result
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
