"""After ``Server.run()`` returns, SIGINT and SIGTERM act again (the loop's handlers are gone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import rpc

    server = rpc.Server("127.0.0.1", 0)
    threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    server.run()
    print("returned", flush=True)
    time.sleep(30)  # a second SIGTERM must end the process, not be swallowed
    print("still alive", flush=True)
    """
)


def test_sigterm_after_run_returns_ends_the_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "returned"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
