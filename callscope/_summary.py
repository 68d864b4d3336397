"""One log line per interval from a long-running command: what it did meanwhile.

An operator tailing ``callscope collector`` or ``callscope registry`` sees it is alive
and working (or idle, or failing) without scraping ``/metrics``.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["DEFAULT_INTERVAL_S", "IntervalSummary", "interval_seconds"]

DEFAULT_INTERVAL_S = 10.0


def interval_seconds(text: str) -> float:
    """``--summary-interval``'s parser: finite seconds, 0 turns the summary off."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or not (value == 0 or 0.1 <= value <= 86_400):
        raise argparse.ArgumentTypeError(f"0 (off) or 0.1 to 86400 seconds, not {text}")
    return value


class IntervalSummary:
    """Every ``interval_s``, log ``describe(delta, totals, elapsed_s)`` on ``logger``.

    ``read()`` returns cumulative counters; ``delta`` holds how much each grew since the
    previous line. A failing ``read`` or ``describe`` logs a warning: the summary never
    stops the command it describes.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float,
        read: Callable[[], Mapping[str, float]],
        describe: Callable[[Mapping[str, float], Mapping[str, float], float], str],
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._read = read
        self._describe = describe
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callscope summary", daemon=True)

    def start(self) -> IntervalSummary:
        if self._interval_s > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        previous: Mapping[str, float] = {}
        failing = False
        since = time.monotonic()
        while not self._stop.wait(self._interval_s):
            now = time.monotonic()
            try:
                totals = self._read()
                delta = {k: v - previous.get(k, 0) for k, v in totals.items()}
                self._logger.info(self._describe(delta, totals, now - since))
                previous, since = totals, now
                failing = False
            except Exception as exc:  # a summary never takes the command down
                if not failing:  # once per failing stretch, not every interval
                    self._logger.warning("summary unavailable: %s", exc)
                failing = True
