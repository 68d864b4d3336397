"""One Kafka client's link, told in one log line per change instead of one per reconnect.

kafka-python logs each reconnect attempt from the client's network thread -- connection
refused, metadata refresh failed, connected -- at INFO, WARNING and ERROR alike: dozens to
hundreds of lines a minute while a broker is away. An operator wants the state: Kafka went
away (and why), is still away every ``every_s`` seconds, is back (after how long).
:class:`LinkReport` is a logging filter on kafka-python's loggers that holds back the lines
of one client's threads and reports those changes instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection

log = logging.getLogger("callscope.collector")

__all__ = ["LinkReport"]


class LinkReport(logging.Filter):
    """Holds back kafka-python's records from ``threads`` (idents); logs state changes."""

    def __init__(self, what: str, threads: Collection[int], every_s: float = 30.0) -> None:
        super().__init__()
        self.what = what
        self._threads = frozenset(threads)
        self.every_s = every_s
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_report = 0.0
        self._failures = 0
        self._loggers: list[logging.Logger] = []

    def install(self) -> LinkReport:
        """Filter every kafka-python logger that exists (they are made when kafka imports)."""
        names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "kafka"]
        self._loggers = [logging.getLogger(n) for n in names]
        for logger in self._loggers:
            logger.addFilter(self)
        return self

    def uninstall(self) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread not in self._threads:
            return True
        if record.levelno >= logging.WARNING:
            self.failed(record.getMessage())
        elif record.getMessage().endswith(": Connected"):  # kafka.net.connection's success line
            self.succeeded()
        return False

    def failed(self, reason: str) -> None:
        """A connection or a send failed: report it if it is news, or every ``every_s``."""
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            if self._down_since is None:
                self._down_since, self._last_report, self._failures = now, now, 1
                first = True
            elif now - self._last_report >= self.every_s:
                self._last_report, first = now, False
            else:
                return
            failures, down_for = self._failures, now - self._down_since
        if first:
            log.warning("%s: Kafka unreachable (%s); one line every %.0f s until it is back",
                        self.what, reason, self.every_s)  # fmt: skip
        else:
            log.warning("%s: Kafka still unreachable after %.0f s (%d failures; last: %s)",
                        self.what, down_for, failures, reason)  # fmt: skip

    def succeeded(self) -> None:
        """A connection or a send succeeded: report the end of an outage, if there was one."""
        with self._lock:
            if self._down_since is None:
                return
            down_for, failures = time.monotonic() - self._down_since, self._failures
            self._down_since = None
        log.info("%s: Kafka reachable again after %.1f s (%d failures)",
                    self.what, down_for, failures)  # fmt: skip
