"""Sharing the stack between test sessions that run at the same time on one machine.

A session that uses a service holds a lease (a file named after its PID and start time). A
service a session had to start is marked ``auto``: it is stopped when the last live lease on it
is released, whichever session that is. A service started by ``callscope stack up`` carries no
mark and is never stopped by tests. Leases of crashed sessions are ignored (their PID is gone).
"""

from __future__ import annotations

import os
from pathlib import Path

from callscope.stack.process import PidRecord, start_ticks

AUTO_MARK = "auto-started-by-tests"


def _lease_dir(service_dir: Path) -> Path:
    return service_dir / "leases"


def _me() -> str:
    return f"{os.getpid()}-{start_ticks(os.getpid())}"


def take(service_dir: Path) -> None:
    folder = _lease_dir(service_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _me()).touch()


def give_back(service_dir: Path) -> None:
    (_lease_dir(service_dir) / _me()).unlink(missing_ok=True)


def others_alive(service_dir: Path) -> bool:
    """True while another live process holds a lease (dead holders' files are removed)."""
    folder = _lease_dir(service_dir)
    alive = False
    for lease in folder.iterdir() if folder.is_dir() else ():
        pid, _, ticks = lease.name.partition("-")
        if not (pid.isdigit() and ticks.isdigit()) or lease.name == _me():
            continue
        if PidRecord(int(pid), int(ticks), "lease").alive():
            alive = True
        else:
            lease.unlink(missing_ok=True)
    return alive


def mark_auto(service_dir: Path, auto: bool) -> None:
    mark = service_dir / AUTO_MARK
    if auto:
        service_dir.mkdir(parents=True, exist_ok=True)
        mark.touch()
    else:
        mark.unlink(missing_ok=True)


def is_auto(service_dir: Path) -> bool:
    return (service_dir / AUTO_MARK).is_file()
