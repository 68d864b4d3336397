"""Who waits on the registry's change feed, and which of them a change wakes.

A long poll may name what it watches (``s:<service>``, ``c:<key>``); then only a
change to one of those wakes it. Without names every write woke every poll, and each
answered and came back: a round trip per watcher per write, so a document written often
(a quota ledger, written by every instance each period) loaded every consumer of every
service. A poll may also name its watcher: a newer poll of the same watcher (its names
changed) answers the older one at once, so no poll keeps waiting on a stale list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator
from contextlib import contextmanager

__all__ = ["MAX_WATCH_NAMES", "Waiters"]

MAX_WATCH_NAMES = 1024
"""Names one poll may watch; a client watching more asks for every change instead."""

WatcherKey = tuple[str, str]  # (principal, the client's watcher id)


class Waiters:
    """The polls waiting now, each woken by its own event."""

    def __init__(self) -> None:
        self._everything: set[asyncio.Event] = set()
        self._by_name: dict[str, set[asyncio.Event]] = {}
        self._by_watcher: dict[WatcherKey, asyncio.Event] = {}

    def supersede(self, watcher: WatcherKey | None) -> None:
        """A poll of ``watcher`` arrived: its older poll, if one waits, answers now."""
        if watcher is not None:
            older = self._by_watcher.pop(watcher, None)
            if older is not None:
                older.set()

    @contextmanager
    def waiting(
        self, names: Collection[str] | None, watcher: WatcherKey | None
    ) -> Iterator[asyncio.Event]:
        """An event set by a change to one of ``names`` (``None``: to anything)."""
        event = asyncio.Event()
        if watcher is not None:
            self._by_watcher[watcher] = event
        if names is None:
            self._everything.add(event)
        else:
            for name in names:
                self._by_name.setdefault(name, set()).add(event)
        try:
            yield event
        finally:
            if watcher is not None and self._by_watcher.get(watcher) is event:
                del self._by_watcher[watcher]
            if names is None:
                self._everything.discard(event)
            else:
                for name in names:
                    waiting = self._by_name.get(name)
                    if waiting is not None:
                        waiting.discard(event)
                        if not waiting:
                            del self._by_name[name]

    def wake(self, services: Collection[str], keys: Collection[str]) -> None:
        """Wake the polls watching everything, or one of these services or keys."""
        for event in self._everything:
            event.set()
        if self._by_name:
            for names in (("s:" + s for s in services), ("c:" + k for k in keys)):
                for name in names:
                    for event in self._by_name.get(name, ()):
                        event.set()

    def wake_all(self) -> None:
        """Wake every poll (the registry stops, or the change log no longer reaches)."""
        for event in self._everything:
            event.set()
        for events in self._by_name.values():
            for event in events:
                event.set()
