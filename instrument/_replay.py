"""Send a spool's backlog to an exporter now (``callscope spool replay``), rather than when
the next process of its service starts and adopts it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

from ._exporters import Exporter
from ._pipeline import ExportPipeline
from ._spool import Spool

__all__ = ["Replayed", "replay_spool"]

_PAUSE_S = 0.5  # between rounds the exporter refused


class Replayed(NamedTuple):
    records: int  # delivered now
    left: bool  # still in the spool (the exporter refused, or the time ran out)


def replay_spool(
    directory: str | os.PathLike[str], exporter: Exporter, timeout_s: float = 60.0
) -> Replayed:
    """Deliver the records waiting in the spool ``directory``, oldest first, within
    ``timeout_s``, through the export pipeline's own replay (the same order and
    at-most-once resend). The exporter is closed at the end.

    Raises ``FileNotFoundError`` when there is no spool there and ``BlockingIOError`` when
    a live process holds it (that process replays it itself)."""
    if not Path(directory).is_dir() or not any(Path(directory).glob("*.seg")):
        raise FileNotFoundError(f"no spool at {directory}")
    pipeline = ExportPipeline(exporter, spool=Spool(directory), kpi_interval_s=3600.0)
    try:
        deadline = time.monotonic() + timeout_s
        while pipeline.backlog and time.monotonic() < deadline:
            before = pipeline.counters["replayed"]
            pipeline.force_flush(max(0.1, deadline - time.monotonic()))
            if pipeline.backlog and pipeline.counters["replayed"] == before:
                time.sleep(_PAUSE_S)
        left = pipeline.backlog
    finally:
        pipeline.shutdown()
    return Replayed(pipeline.counters["replayed"], left)
