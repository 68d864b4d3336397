"""Shows that slow work (a Maven download, services starting) is alive.

On a terminal, when the stack reports to stderr, one tqdm line with the elapsed time;
everywhere else (logs, CI, the test fixtures' own reports) the dots it always printed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Report = Callable[[str], None]


def to_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class Ticker:
    """``text`` (what is being waited for), then ``tick()`` now and then, ``note(line)`` for
    news on a line of its own, and ``close(end)`` once done."""

    def __init__(self, report: Report, text: str) -> None:
        self._report = report
        self._bar: Any = None
        if report is to_stderr and sys.stderr.isatty():
            from tqdm import tqdm

            self._text = text.rstrip()
            self._bar = tqdm(desc=self._text, bar_format="{desc} [{elapsed}]", file=sys.stderr)
        else:
            report(text)

    def tick(self) -> None:
        if self._bar is None:
            self._report(".")
        else:
            self._bar.refresh()

    def note(self, line: str) -> None:
        if self._bar is None:
            self._report("\n" + line)
        else:
            self._bar.write(line, file=sys.stderr)

    def close(self, end: str = "\n") -> None:
        if self._bar is None:
            self._report(end)
        else:
            self._bar.set_description_str(self._text + end.rstrip(), refresh=False)
            self._bar.close()
