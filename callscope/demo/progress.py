"""The demo's live progress: one tqdm line on a terminal, a plain line every 10 s elsewhere."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping

from tqdm import tqdm

__all__ = ["Progress"]

PLAIN_EVERY_S = 10.0


class Progress:
    def __init__(self, duration_s: float | None) -> None:
        sized = shutil.get_terminal_size((0, 0)).columns > 0
        self._bar = tqdm(
            total=round(duration_s) if duration_s else None,
            desc="callscope demo",
            unit="s",
            bar_format="{desc} {elapsed}{postfix}"
            if not duration_s
            else "{desc} {bar:12} {n_fmt}/{total_fmt} s{postfix}",
            disable=None,  # a terminal only
            file=sys.stdout,
            # a terminal that reports no size (a pty without one) still gets the line
            **({} if sized else {"ncols": 160, "nrows": 24}),
            dynamic_ncols=sized,
        )
        self._started = time.monotonic()
        self._printed = self._started

    def update(self, fields: Mapping[str, object]) -> None:
        now = time.monotonic()
        text = "  ".join(f"{k} {v}" for k, v in fields.items())
        if self._bar.disable:
            if now - self._printed >= PLAIN_EVERY_S:
                print(f"progress {now - self._started:5.0f} s: {text}", flush=True)
                self._printed = now
            return
        self._bar.set_postfix_str(text, refresh=False)
        self._bar.update(round(now - self._started) - self._bar.n)

    def write(self, line: str) -> None:
        """A line above the progress line (a fault switched on, ...)."""
        if self._bar.disable:
            print(line, flush=True)
        else:
            self._bar.write(line)

    def close(self) -> None:
        self._bar.close()
