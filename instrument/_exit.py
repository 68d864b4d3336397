"""What a traced process's exit needs: the final flush must not be cut short by a signal.

Supervisors often send SIGTERM twice, and by the time ``atexit`` runs the final flush the
RPC server's handler is gone: a second SIGTERM (or Ctrl-C) would kill the process
mid-flush, losing the last spans and KPI window. :func:`signals_held` makes such a signal
wait for the flush, then acts on it as the process would have.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["signals_held"]

log = logging.getLogger("callscope.instrument")

HELD = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def signals_held(signums: tuple[int, ...] = HELD) -> Iterator[list[int]]:
    """Inside, each of ``signums`` is logged and remembered instead of handled; on the way
    out the previous handlers come back and each remembered signal is raised again (so a
    SIGTERM still ends the process, after the flush). Only on the main thread, the one
    Python runs signal handlers on; elsewhere this holds nothing."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        if signum not in held:
            held.append(signum)
        log.warning("callscope: %s during the final flush; acted on once it is done",
                    signal.Signals(signum).name)  # fmt: skip

    previous = {}
    for signum in signums:
        before = signal.getsignal(signum)
        if before is None or before is signal.SIG_IGN:  # set outside Python, or ignored
            continue
        previous[signum] = before
        signal.signal(signum, hold)
    try:
        yield held
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)
        for signum in held:
            signal.raise_signal(signum)
