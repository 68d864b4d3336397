"""One service's providers folder on ZooKeeper, watched for as long as anyone subscribes.

kazoo's ``ChildrenWatch`` ends for good, and silently, when its node is deleted (an
administrator's clean-up, a restored snapshot): a folder deleted and created again would
never be heard of. So a ``DataWatch`` on the folder -- an existence watch that survives
the node's deletion and the session's loss -- arms a new ``ChildrenWatch`` each time the
folder appears, and pushes an empty list when it goes. :meth:`ProvidersWatch.check`
re-reads the folder: what differs from the last push was missed by a watch, whatever the
cause, and the folder is watched again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("callscope.registry")

Push = Callable[[list[str]], bool]  # pushes the providers named; True when that changed them


class ProvidersWatch:
    """Pushes the children of ``folder`` through ``push``, across its deletions."""

    def __init__(self, client: Any, folder: str, push: Push, call: Callable[..., Any]) -> None:
        """``call(op, *args)`` is one bounded ZooKeeper call (the registry's own)."""
        from kazoo.recipe.watchers import DataWatch

        self._client = client
        self.folder = folder
        self._push_children = push
        self._call = call
        self._lock = threading.Lock()  # one push at a time: a stale read never overtakes
        self._incarnation: int | None = None  # czxid of the folder being watched
        self._generation = 0  # the current ChildrenWatch's; older ones end at their next event
        self.stopped = False
        DataWatch(client, folder, self._existence)

    def stop(self) -> None:
        """Each kazoo watch ends at its next event (returning False is kazoo's way)."""
        self.stopped = True

    def check(self) -> bool:
        """Re-read the folder; when that changes what was pushed, watch it again.

        Returns whether a change had been missed."""
        from kazoo.exceptions import NoNodeError

        try:
            children, stat = self._call("get_children", self.folder, include_data=True)
        except NoNodeError:
            children, stat = [], None
        if self.stopped or not self._push(list(children)):
            return False
        log.warning("%s differs from its last push (a change was missed); watching it again",
                    self.folder)  # fmt: skip
        if stat is not None:
            self._arm(stat.czxid, again=True)
        return True

    def _push(self, children: list[str]) -> bool:
        with self._lock:
            return self._push_children(children)

    def _existence(self, data: bytes | None, stat: Any) -> bool | None:
        if self.stopped:
            return False
        if stat is None:  # gone, and every provider with it
            with self._lock:
                self._incarnation = None
            self._push([])
        else:
            self._arm(stat.czxid)
        return None

    def _arm(self, czxid: int, again: bool = False) -> None:
        from kazoo.recipe.watchers import ChildrenWatch

        with self._lock:
            if self.stopped or (czxid == self._incarnation and not again):
                return  # its data changed, not the folder itself: the watch still runs
            self._incarnation = czxid
            self._generation += 1
            generation = self._generation

        def changed(children: list[str]) -> bool | None:
            if self.stopped or generation != self._generation:
                return False  # a newer watch follows this folder
            self._push(list(children))
            return None

        ChildrenWatch(self._client, self.folder, changed)
