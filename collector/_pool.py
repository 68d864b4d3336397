"""Scale-out: ``workers`` collector processes in one Kafka consumer group.

One collector process is GIL-bound (decoding and SQLite writes take turns on one core);
N processes in the same ``group_id`` share the topics' partitions, so ingest scales with
the cores and the partitions (the spans topic needs at least N partitions, or the extra
workers sit idle). Each worker is a full :class:`Collector` with its own store
connections, started with the ``spawn`` context (no forked librdkafka or SQLite state).
SQLite writers in several processes serialise on the database's write lock; its busy
timeout makes them wait rather than fail.

Every worker serves OTLP (HTTP and gRPC) on the same ports, bound with ``SO_REUSEPORT``:
the kernel spreads the connections over the workers, so the OTLP intake scales with the
cores too (each worker acknowledges what it stored itself). Port 0 is resolved once, by
the pool. ``/metrics`` is answered by whichever worker gets the connection (its own
counters). Only worker 0 reads the spool (a spool directory cannot be shared).
:meth:`CollectorPool.stop` (or SIGTERM/SIGINT in :meth:`CollectorPool.run_until_signalled`)
lets every worker finish, store and commit the batch in hand. If a worker dies, the
others are stopped and the exit status is non-zero.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from ._config import CollectorConfig

__all__ = ["CollectorPool"]

log = logging.getLogger("callscope.collector")

COUNTERS = ("consumed", "stored_spans", "stored_kpis", "dlq", "batches", "retries")
_PUBLISH_S = 0.02  # how often a worker copies its counters to the shared array


def _worker_main(
    config: CollectorConfig,
    index: int,
    stop: Any,
    counts: Any,
    ready: Any = None,
    level: int = logging.WARNING,
) -> None:
    """A worker process: one collector until ``stop`` is set; exit 1 if it fails."""
    from ._collector import Collector

    # The parent's root level (the CLI: INFO, or DEBUG with -v; embedders: WARNING).
    logging.basicConfig(level=level, format=f"%(asctime)s [worker {index}] %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into ``stop``
    collector = Collector(config)
    signal.signal(signal.SIGTERM, lambda signum, frame: collector.stopping.set())
    base = index * len(COUNTERS)

    def publish() -> None:
        for k, name in enumerate(COUNTERS):
            counts[base + k] = collector.metrics.total(name)

    status = 0
    if ready is not None:  # join the group together: one rebalance at start, not one each
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait(60)
    try:
        collector.start()
        while not stop.is_set() and not collector.stopping.wait(_PUBLISH_S):
            publish()
            if not any(w.thread.is_alive() for w in collector.workers):
                log.error("callscope collector: worker %d: every source stopped", index)
                status = 1
                break
    except Exception:
        log.exception("callscope collector: worker %d failed", index)
        status = 1
    finally:
        collector.stop()
        publish()
    sys.exit(status)


class CollectorPool:
    """``config.workers`` collector processes in one consumer group."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self._ctx = multiprocessing.get_context("spawn")
        self._stop = self._ctx.Event()
        self._counts = self._ctx.Array("q", config.workers * len(COUNTERS), lock=False)
        self._ready = self._ctx.Barrier(config.workers)
        self.processes: list[BaseProcess] = []
        self._holders: list[socket.socket] = []
        self.http_port = self._reserve(config.http_port)
        self.grpc_port = self._reserve(config.grpc_port) if config.otlp else None

    def _reserve(self, port: int | None) -> int | None:
        """A port every worker can bind with SO_REUSEPORT; 0 picks one, held until stop."""
        if port != 0:
            return port
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((self.config.http_host, 0))  # bound, never listening: gets no connection
        self._holders.append(holder)
        return holder.getsockname()[1]

    def worker_config(self, index: int) -> CollectorConfig:
        return dataclasses.replace(
            self.config,
            workers=1,
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            reuse_port=True,
            spool_dir=self.config.spool_dir if index == 0 else None,
        )

    def start(self) -> CollectorPool:
        cfg = self.config
        if cfg.kafka_bootstrap:  # enough partitions for every worker to get some
            from ._kafka_source import ensure_topics

            topics = [cfg.spans_topic, cfg.kpis_topic, cfg.dlq_topic]
            ensure_topics(cfg.kafka_bootstrap, topics, partitions=max(3, cfg.workers))
        root_level = logging.getLogger().getEffectiveLevel()
        for index in range(cfg.workers):
            process = self._ctx.Process(
                target=_worker_main,
                args=(
                    self.worker_config(index),
                    index,
                    self._stop,
                    self._counts,
                    self._ready,
                    root_level,
                ),
                name=f"callscope-collector-{index}",
            )
            process.start()
            self.processes.append(process)
        log.info("callscope collector: %d workers in group %s", cfg.workers, cfg.group_id)
        return self

    def count(self, index: int, name: str) -> int:
        """Worker ``index``'s counter ``name`` (as last published, every 20 ms)."""
        return int(self._counts[index * len(COUNTERS) + COUNTERS.index(name)])

    def total(self, name: str) -> int:
        return sum(self.count(i, name) for i in range(self.config.workers))

    def failed(self) -> list[int]:
        """Indexes of workers that exited with a non-zero status."""
        return [i for i, p in enumerate(self.processes) if p.exitcode not in (None, 0)]

    def stop(self, timeout_s: float = 30.0) -> int:
        """Stop every worker gracefully (killed after ``timeout_s``); 0 if all exited cleanly."""
        self._stop.set()
        self._ready.abort()  # workers still waiting for a dead one to start go on (and stop)
        for holder in self._holders:
            holder.close()
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                log.error("callscope collector: %s did not stop; killing it", process.name)
                process.kill()
                process.join(5)
        return 1 if any(p.exitcode != 0 for p in self.processes) else 0

    def run_until_signalled(self) -> int:
        """Start, stop all workers on SIGTERM/SIGINT or when one dies; the exit status."""
        stopping = False

        def on_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            log.info("callscope collector: signal %d, shutting down %d workers", signum,
                     len(self.processes))  # fmt: skip
            stopping = True

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        died = False
        try:
            self.start()
            while not stopping:
                time.sleep(0.2)
                if stopping:  # a signal to the whole group may stop the workers first
                    break
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    for p in dead:
                        log.error("callscope collector: %s exited (status %s); stopping all",
                                  p.name, p.exitcode)  # fmt: skip
                    died = True
                    break
        finally:
            status = self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 1 if died or status else 0
