"""The worker's pipeline: commits follow stores, in order, with a bounded number in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector import CollectorConfig, CollectorMetrics, FileDeadLetters, Message
from collector._worker import SourceWorker
from instrument.model import SpanRecord
from storage import StorageUnavailable, open_analytics_store, open_span_store

from .helpers import span_json, wait_for


class ListSource:
    """Batches of ``size`` span messages; records what was committed and when."""

    name = "list"
    batch_wait_s = None

    def __init__(self, messages: int, size: int, prefetch: int = 2) -> None:
        self.prefetch = prefetch
        self._values = [span_json("orders", i) for i in range(messages)]
        self._size = size
        self._polled = 0
        self._marked = 0
        self.commits: list[int] = []  # each commit: how many messages it acknowledges
        self.polled_at_commit: list[int] = []

    def poll(self, max_records: int, timeout_s: float) -> list[Message]:
        values = self._values[self._polled : self._polled + min(max_records, self._size)]
        if not values:
            time.sleep(timeout_s)
        self._polled += len(values)
        return [Message("callscope.spans", v, origin={"i": i}) for i, v in enumerate(values)]

    def mark(self) -> int:
        self._marked = self._polled
        return self._marked

    def commit(self, mark: Any = None) -> None:
        self.commits.append(self._marked if mark is None else mark)
        self.polled_at_commit.append(self._polled)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def lag(self) -> int | None:
        return None

    def close(self) -> None:
        pass


class SlowStore:
    """Wraps a span store: each write takes ``delay_s``; fails while ``down`` is set."""

    def __init__(self, inner: Any, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.down = threading.Event()

    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        time.sleep(self.delay_s)
        if self.down.is_set():
            raise StorageUnavailable("down for the test")
        self.inner.write_spans(spans)


def worker(tmp_path: Path, source: ListSource, store: Any) -> tuple[SourceWorker, Any]:
    url = f"sqlite://{tmp_path / 'store.db'}"
    cfg = CollectorConfig(store_url=url, http_port=None, batch_size=100, batch_wait_s=0.01,
                          backoff_initial_s=0.01, backoff_max_s=0.05)  # fmt: skip
    stopping = threading.Event()
    w = SourceWorker(source, cfg, store, open_analytics_store(url), FileDeadLetters(
        str(tmp_path / "dlq.jsonl")), CollectorMetrics(), stopping)  # fmt: skip
    return w, stopping


def test_commits_follow_stores_in_order_and_polling_stays_bounded(tmp_path: Path) -> None:
    inner = open_span_store(f"sqlite://{tmp_path / 'store.db'}")
    store = SlowStore(inner, delay_s=0.02)
    source = ListSource(messages=2000, size=100, prefetch=2)
    w, stopping = worker(tmp_path, source, store)
    w.thread.start()
    wait_for(lambda: source.commits[-1:] == [2000], 30, "every batch committed")
    stopping.set()
    w.thread.join(10)
    assert source.commits == sorted(source.commits) == list(range(100, 2001, 100))
    assert inner.count() == 2000
    # Back-pressure: never more than prefetch + 1 batches polled beyond what was committed.
    for committed, polled in zip(source.commits, source.polled_at_commit, strict=True):
        assert polled - committed <= (source.prefetch + 1) * 100


def test_a_failing_store_commits_nothing_and_stops_polling(tmp_path: Path) -> None:
    inner = open_span_store(f"sqlite://{tmp_path / 'store.db'}")
    store = SlowStore(inner, delay_s=0.0)
    store.down.set()
    source = ListSource(messages=5000, size=100, prefetch=2)
    w, stopping = worker(tmp_path, source, store)
    w.thread.start()
    time.sleep(1.0)
    assert source.commits == [] and source._polled <= 300  # the store's batch + 2 prefetched
    store.down.clear()
    wait_for(lambda: source.commits[-1:] == [5000], 30, "everything once the store is back")
    stopping.set()
    w.thread.join(10)
    assert inner.count() == 5000 and source.commits == sorted(source.commits)


def test_stopping_while_the_store_fails_leaves_the_batch_uncommitted(tmp_path: Path) -> None:
    store = SlowStore(open_span_store(f"sqlite://{tmp_path / 'store.db'}"), delay_s=0.0)
    store.down.set()
    source = ListSource(messages=1000, size=100, prefetch=0)
    w, stopping = worker(tmp_path, source, store)
    w.thread.start()
    time.sleep(0.3)
    stopping.set()
    w.thread.join(10)
    assert not w.thread.is_alive() and source.commits == []
