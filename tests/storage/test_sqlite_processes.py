"""SQLite opened by several processes at once, as `callscope collector --workers N` does."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from storage import open_span_store


def _open_together(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    open_span_store(url).close()


def test_processes_opening_one_new_file_together_all_succeed(tmp_path: Path) -> None:
    # Each open switches the file to WAL and creates the schema; without waiting for the
    # lock, one of four racing processes failed with "database is locked" about once in
    # ten rounds. Twelve rounds make that failure all but certain to show.
    context = multiprocessing.get_context("fork")
    for round_ in range(12):
        url = f"sqlite://{tmp_path / f'round-{round_}.db'}"
        barrier = context.Barrier(4)
        workers = [context.Process(target=_open_together, args=(url, barrier)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [worker.exitcode for worker in workers] == [0, 0, 0, 0], f"round {round_}"
