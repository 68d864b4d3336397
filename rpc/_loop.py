"""Event loops: uvloop when installed, and a loop thread for the sync facade."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:  # pragma: no cover - depends on the platform
    import uvloop as _uvloop
except ImportError:  # pragma: no cover
    _uvloop = None  # type: ignore[assignment]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop: uvloop's when available (faster), asyncio's otherwise."""
    if _uvloop is not None:
        return _uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """Like :func:`asyncio.run`, on the fastest loop available."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def run_until_signalled(
    start: Callable[[], Awaitable[Any]],
    stop: Callable[[], Awaitable[Any]],
    ready: Callable[[], None] | None = None,
) -> None:
    """Start, call ``ready()``, wait for SIGINT or SIGTERM, stop: a server process's life."""

    async def main() -> None:
        await start()
        if ready is not None:
            ready()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stopped.set)
        try:
            await stopped.wait()
            await stop()
        finally:
            # uvloop leaves a handler of a closed loop installed: the process would then
            # ignore SIGINT/SIGTERM for the rest of its life (e.g. while flushing at exit).
            for sig in signals:
                loop.remove_signal_handler(sig)

    run(main())


class LoopThread:
    """A daemon thread running one event loop, for blocking callers."""

    def __init__(self, name: str = "callscope-loop") -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        """Schedule ``coro`` on the loop; returns a :class:`concurrent.futures.Future`."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and block for its result."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking call from the client's own loop thread would deadlock")
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()
