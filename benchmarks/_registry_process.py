"""An embedded registry in its own ``callscope registry`` process, for the benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def registry_process() -> Iterator[tuple[str, int]]:
    """``(url, pid)`` of a fresh registry (its database in a temporary folder), stopped after."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        argv = [sys.executable, "-m", "callscope", "registry", "--db", f"{tmp}/registry.db",
                "--port", str(port)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        try:
            assert server.stdout is not None
            if "callscope registry on" not in server.stdout.readline():
                raise RuntimeError("the embedded registry did not start")
            yield f"callscope://127.0.0.1:{port}", server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)
            server.stdout.close()  # type: ignore[union-attr]
