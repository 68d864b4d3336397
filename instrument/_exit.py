"""What a traced process's exit needs: a final flush that signals neither skip nor cut short.

A program that never handles SIGTERM or SIGHUP dies of it without running ``atexit``, so
its last spans and KPI window were lost whenever a supervisor stopped it:
:func:`flush_before_termination` flushes first, then lets the signal end the process as it
would have. Supervisors also often send SIGTERM twice, and by the time ``atexit`` runs the
final flush the RPC server's handler is gone: a second SIGTERM (or Ctrl-C) would kill the
process mid-flush. :func:`signals_held` makes such a signal wait for the flush, then acts
on it as the process would have.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = [
    "flush_before_termination",
    "leave_signals_to_the_main_thread",
    "restore_termination",
    "signals_held",
]

log = logging.getLogger("callscope.instrument")

HELD = (signal.SIGTERM, signal.SIGINT)
TERMINATING = (signal.SIGTERM, signal.SIGHUP)  # what ends a process without atexit


@contextmanager
def signals_held(signums: tuple[int, ...] = HELD) -> Iterator[list[int]]:
    """Inside, each of ``signums`` is logged and remembered instead of handled; on the way
    out the previous handlers come back and each remembered signal is raised again (so a
    SIGTERM still ends the process, after the flush). Only on the main thread, the one
    Python runs signal handlers on; elsewhere this holds nothing."""
    held: list[int] = []
    if not _on_main_thread():
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


def leave_signals_to_the_main_thread() -> None:
    """Block the terminating signals (and SIGINT) in the calling background thread.

    The kernel may deliver a process's signal to any thread that does not block it. Python
    runs the handler on the main thread all the same, but a main thread asleep in
    ``time.sleep`` is not woken: the flush-then-die handler waited out the sleep (60 s in
    a test) when the export thread took the signal. Threads started from here inherit it.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {*TERMINATING, signal.SIGINT})


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def flush_before_termination(flush: Callable[[], object]) -> Callable[..., None] | None:
    """Where the program left SIGTERM or SIGHUP at the default (death, no ``atexit``), run
    ``flush()`` first, then die of the signal all the same (same exit status). The handler
    installed, or ``None`` (not the main thread, or the program handles both itself)."""
    if not _on_main_thread():
        return None

    def flush_then_die(signum: int, frame: FrameType | None) -> None:
        try:
            flush()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    installed = False
    for signum in TERMINATING:
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, flush_then_die)
            installed = True
    return flush_then_die if installed else None


def restore_termination(handler: Callable[..., None] | None) -> None:
    """Undo :func:`flush_before_termination` where ``handler`` is still the one in place."""
    if handler is None or not _on_main_thread():
        return
    for signum in TERMINATING:
        if signal.getsignal(signum) is handler:
            signal.signal(signum, signal.SIG_DFL)
