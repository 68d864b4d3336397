"""Detached service processes: start in their own session, record PIDs, stop by PID.

A PID file holds the PID and the kernel's start time of that process, so a PID reused by an
unrelated program after a crash or reboot is recognised as stale rather than killed.
Every process is started as the leader of a new session and process group, so stopping the
group also stops the children a launcher forks (Elasticsearch's CLI starts the server JVM).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from callscope.stack.errors import StackError
from callscope.stack.settings import HOST


@dataclass(frozen=True)
class Launch:
    """How to start one OS process of a service (HBase has two: master and Thrift)."""

    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    preexec_user: tuple[int, int] | None = None  # (uid, gid) to drop to, when root


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int
    name: str

    def alive(self) -> bool:
        """True while this very process (not a later one with its PID) runs and is no zombie."""
        stat = _stat(self.pid)
        return stat is not None and stat[1] != "Z" and stat[2] == self.start_ticks


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(process group, state, start time in ticks) from /proc, or None if there is no such PID."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[2]), fields[0], int(fields[19])


def start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks since boot (0 if it does not exist)."""
    stat = _stat(pid)
    return stat[2] if stat else 0


def read_pid(path: Path) -> PidRecord | None:
    """The record in ``path``; None when absent or unreadable (a half-written file is stale)."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(int(data["pid"]), int(data["start_ticks"]), str(data["name"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def spawn(launch: Launch, log: Path, pid_file: Path) -> PidRecord:
    """Start ``launch`` detached (see ``_detach``), output appended to ``log``; record its PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== callscope stack: starting {launch.name} at {time.ctime()}\n".encode())
    spec = {"argv": launch.argv, "cwd": str(launch.cwd), "env": {**os.environ, **launch.env},
            "log": str(log), "user": launch.preexec_user}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "callscope.stack._detach"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise StackError(
            "START_FAILED", f"could not launch {launch.name}: {launch.argv[0]}", done.stderr
        )
    pid = int(done.stdout)
    record = PidRecord(pid, start_ticks(pid), launch.name)
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": record.pid, "start_ticks": record.start_ticks,
                               "name": record.name, "argv": launch.argv[:3]}))  # fmt: skip
    tmp.replace(pid_file)
    return record


def group_members(pgid: int, since_ticks: int = 0) -> list[int]:
    """PIDs of live processes in group ``pgid`` started at or after ``since_ticks``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat and stat[0] == pgid and stat[1] != "Z" and stat[2] >= since_ticks:
                members.append(int(entry.name))
    return members


def rss_bytes(pgid: int) -> int:
    """Resident memory of a whole process group (launcher plus the JVM it forked)."""
    total = 0
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def stop(record: PidRecord, grace_s: float) -> bool:
    """SIGTERM the process group, SIGKILL it after ``grace_s``; True when nothing remains."""
    pgid, since = record.pid, record.start_ticks

    def gone() -> bool:
        return not record.alive() and not group_members(pgid, since)

    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if gone():
            return True
        # The leader may have died and left children (Elasticsearch's server JVM) behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if gone():
                return True
            time.sleep(0.2)
    return gone()


def port_busy(port: int) -> bool:
    """True when something already listens on ``port`` at 127.0.0.1 (or on every address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def port_open(port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to 127.0.0.1:``port`` succeeds."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
