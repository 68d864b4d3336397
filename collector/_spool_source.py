"""The embedded transport: every process spool under a root (``CALLSCOPE_SPOOL_DIR``).

Each service's spool is ``<root>/<service>[.N]`` (see ``instrument.open_spool``); the
collector reads each with its own cursor ``collector`` and finds new ones as they appear.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from instrument import SpoolReader

from ._records import Message

__all__ = ["SpoolSource"]

RESCAN_S = 2.0


class SpoolSource:
    prefetch = 0  # a spool cursor commits everything read so far: one batch at a time
    batch_wait_s: float | None = None  # the config's

    def __init__(self, root: str | os.PathLike[str], cursor: str = "collector") -> None:
        self.root = Path(root)
        self.name = f"spool:{self.root}"
        self.cursor = cursor
        self._readers: dict[Path, SpoolReader] = {}
        self._dirty: set[Path] = set()
        self._scanned = 0.0
        self._next = 0

    def _rescan(self) -> None:
        now = time.monotonic()
        if now - self._scanned < RESCAN_S:
            return
        self._scanned = now
        if not self.root.is_dir():
            return
        for directory in sorted(self.root.iterdir()):
            is_spool = directory.is_dir() and (directory / "LOCK").exists()
            if is_spool and directory not in self._readers:
                self._readers[directory] = SpoolReader(directory, self.cursor)

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        deadline = time.monotonic() + timeout_s
        while True:
            self._rescan()
            out: list[Message] = []
            readers = list(self._readers.items())
            for i in range(len(readers)):  # round robin, so one busy spool cannot starve others
                directory, reader = readers[(self._next + i) % len(readers)]
                entries = reader.read(max_records - len(out))
                if entries:
                    self._dirty.add(directory)
                    origin: dict[str, object] = {"spool": str(directory)}
                    out += [Message(e.topic, e.value, e.key, origin) for e in entries]
                if len(out) >= max_records:
                    break
            self._next += 1
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def mark(self) -> None:
        """Cursors only commit everything read so far (hence ``prefetch = 0``)."""

    def commit(self, mark: None = None) -> None:
        for directory in self._dirty:
            self._readers[directory].commit()
        self._dirty.clear()

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def lag(self) -> int | None:
        return None

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
