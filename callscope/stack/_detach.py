"""Launcher run as ``python -m callscope.stack._detach``: starts one service and exits at once.

The service becomes the leader of a new session and process group, and, once this launcher
has exited, a child of init rather than of the caller: a test session or the CLI never holds
a ``Popen`` for it (no zombie, no "subprocess still running" warning) and it outlives both.
Reads a JSON spec on stdin; prints the service's PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> None:
    spec = json.load(sys.stdin)
    user = spec.get("user")
    extra = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
    with open(spec["log"], "ab") as log:
        proc = subprocess.Popen(
            spec["argv"],
            cwd=spec["cwd"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **extra,
        )
    print(proc.pid, flush=True)
    os._exit(0)  # leave the child running; skip Popen's finaliser


if __name__ == "__main__":
    main()
