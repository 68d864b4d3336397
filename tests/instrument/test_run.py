"""``callscope run``: the program it starts gets the signals and gives the exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .processes import first_line, running

# Says it is ready, then on a signal says which and exits with 10 + its number.
PROGRAM = """
import os, signal, sys, time
def stop(signum, frame):
    print("got", signal.Signals(signum).name, flush=True)
    sys.exit(10 + signum)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, stop)
print("ready", os.getpid(), flush=True)
time.sleep(60)
sys.exit(1)
"""


def _command(program: str) -> list[str]:
    return [sys.executable, "-m", "callscope", "run", "--", sys.executable, "-c", program]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CALLSCOPE_EXPORTER": "none", "CALLSCOPE_LIBRARIES": "none",
            "CALLSCOPE_SPOOL_DIR": str(tmp_path / "spool")}  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_callscope_run_reaches_the_program(tmp_path: Path, signum: int) -> None:
    with running(_command(PROGRAM), env=_env(tmp_path)) as proc:
        ready = first_line(proc).split()
        assert ready[:1] == ["ready"], proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    program_pid = int(ready[1])
    if _alive(program_pid):  # it outlived what its supervisor stopped
        os.kill(program_pid, signal.SIGKILL)
        pytest.fail(f"the program kept running after callscope run got {signum!r}")
    assert out == f"got {signal.Signals(signum).name}\n", err
    assert proc.returncode == 10 + signum  # the program's own status


def test_the_program_s_exit_status_and_signal_are_callscope_run_s(tmp_path: Path) -> None:
    with running(_command("import sys; sys.exit(3)"), env=_env(tmp_path)) as exits:
        assert exits.wait(timeout=30) == 3
    kill = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with running(_command(kill), env=_env(tmp_path)) as killed:
        assert killed.wait(timeout=30) == -signal.SIGKILL  # ended by a signal, as a shell sees it


def test_a_command_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, "-m", "callscope", "run", "--", "no-such-command-here"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 127
    assert missing.stderr.strip() == "callscope run: command not found: no-such-command-here"
    not_executable = subprocess.run(
        [sys.executable, "-m", "callscope", "run", "--", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert not_executable.returncode == 126
    assert not_executable.stderr.startswith("callscope run: cannot run ")
