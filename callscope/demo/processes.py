"""The demo's child processes: each in its own session, logging to a file, stopped by group.

A child in its own session (process group) does not receive the terminal's Ctrl-C: the
supervisor stops the children itself, in order (load first, then the services downstream
of it, the collector once the spans are in, the registry last), with SIGTERM to the whole
group, then SIGKILL for a group still there after its grace -- so nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Child", "Children"]


class Child:
    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "callscope", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # gone already
            os.killpg(self.process.pid, signum)

    def stop(self, grace_s: float) -> int:
        """SIGTERM the group, wait up to ``grace_s``, then SIGKILL; the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.process.wait(10)
        finally:
            self.signal(signal.SIGKILL)  # anything the child itself left in its group

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Children:
    """Every process the demo started, by name, in start order."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.started: dict[str, Child] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
        child = Child(name, argv, env, self._log_dir / f"{name.replace('#', '-')}.log")
        self.started[name] = child
        return child

    def stop(self, names: Sequence[str], grace_s: float) -> None:
        """SIGTERM these together (they drain in parallel), then wait for each in turn."""
        chosen = [self.started[n] for n in names if n in self.started]
        for child in chosen:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in chosen:
            child.stop(max(0.1, deadline - time.monotonic()))

    def stop_all(self, grace_s: float) -> None:
        self.stop(list(reversed(self.started)), grace_s)

    def dead(self) -> list[Child]:
        return [c for c in self.started.values() if not c.alive()]
