"""Running a program that refuses root (Elasticsearch) when ``callscope stack`` runs as root.

First choice: a user namespace (``unshare --user --map-user``) in which the process sees itself
as an ordinary user while its files stay root's, so it reads and writes the run directory under
``/root`` like any other service. Where user namespaces are disabled, a dedicated system user
``callscope`` is created and given the service's run directory; it must be able to reach it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from functools import lru_cache
from pathlib import Path

from callscope.stack.errors import StackError

INNER_ID = 1000  # any id but 0: what the program sees as its uid inside the namespace
SYSTEM_USER = "callscope"


def wrap(argv: list[str], readable: list[Path], writable: Path) -> tuple[list[str], tuple | None]:
    """``argv`` and a (uid, gid) to drop to, such that the program does not run as root."""
    if os.geteuid() != 0:
        return argv, None
    if _userns_works():
        prefix = ["unshare", "--user", f"--map-user={INNER_ID}", f"--map-group={INNER_ID}"]
        return [*prefix, *argv], None
    uid, gid = _system_user()
    for path in [*readable, writable]:
        _check_reachable(path, uid, gid)
    for root, _dirs, files in os.walk(writable):
        for name in [root, *(os.path.join(root, f) for f in files)]:
            os.chown(name, uid, gid)
    return argv, (uid, gid)


@lru_cache(maxsize=1)
def _userns_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = ["unshare", "--user", f"--map-user={INNER_ID}", f"--map-group={INNER_ID}", "true"]
    return subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0


def _system_user() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
               SYSTEM_USER]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise StackError(
                "NO_UNPRIVILEGED",
                "Elasticsearch refuses to run as root; user namespaces are unavailable and "
                f"`useradd {SYSTEM_USER}` failed: {out.stderr.strip()}; run as a non-root user",
            ) from None
        entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _check_reachable(path: Path, uid: int, gid: int) -> None:
    for parent in [*reversed(path.resolve().parents), path.resolve()]:
        info = parent.stat()
        bit = stat.S_IXUSR if info.st_uid == uid else stat.S_IXGRP if info.st_gid == gid else \
            stat.S_IXOTH  # fmt: skip
        if not info.st_mode & bit:
            raise StackError(
                "NO_UNPRIVILEGED",
                f"Elasticsearch refuses to run as root and must run as user {SYSTEM_USER}, "
                f"who cannot enter {parent}; set CALLSCOPE_STACK_DIR to a directory outside it "
                "(e.g. /var/tmp/callscope-stack) or run as a non-root user",
            )
