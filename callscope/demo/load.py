"""The demo's load generator (``callscope demo-load``, internal): checkouts at a steady rate.

Calls ``gateway.GatewayService/checkout`` ``--qps`` times a second (open loop: a slow
answer does not slow the arrivals; at most ``MAX_IN_FLIGHT`` wait at once, past which a
call is counted as shed), through the registry like any consumer, traced as ``loadgen``.
Twice a second it writes its counters to ``run/load.json`` for the supervisor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import rpc
from rpc.registry import REGISTRY_URL_ENV

from .topology import SERVICES

__all__ = ["LoadStats", "open_loop", "read_stats", "run_load"]

MAX_IN_FLIGHT = 500
ITEMS = ("tea", "coffee", "cake", "scones")
STATS_FILE = "load.json"


def qps(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0.1 <= value <= 2000:
        raise argparse.ArgumentTypeError(f"calls a second within 0.1..2000, not {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-load")  # internal: no help, so not listed
    p.add_argument("--registry", default=os.environ.get(REGISTRY_URL_ENV),
                   required=not os.environ.get(REGISTRY_URL_ENV))  # fmt: skip
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--qps", type=qps, default=20.0)
    p.set_defaults(handler=run_load)


class LoadStats:
    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.shed = 0
        self.codes: Counter[str] = Counter()

    def as_dict(self) -> dict[str, object]:
        return {"calls": self.calls, "errors": self.errors, "shed": self.shed,
                "codes": dict(self.codes), "time": time.time()}  # fmt: skip


def read_stats(run_dir: Path) -> dict[str, object]:
    try:
        return json.loads((run_dir / STATS_FILE).read_text())
    except (OSError, ValueError):
        return {"calls": 0, "errors": 0, "shed": 0, "codes": {}}


def run_load(args: argparse.Namespace) -> int:
    import instrument.auto  # noqa: F401 - traced through the CALLSCOPE_* variables it was given

    rpc.run(_generate(args.registry, args.workdir / "run", args.qps))
    return 0


async def _generate(registry_url: str, run_dir: Path, rate: float) -> None:
    from rpc.registry import RegistryDirectory, connect

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stats = LoadStats()
    directory = RegistryDirectory(
        connect(registry_url), cache_dir=run_dir.parent / "cache" / "loadgen"
    )
    async with rpc.AsyncClient(directory, injvm=False, cluster="failover", timeout=5.0) as client:
        gateway = client.proxy(SERVICES["gateway"].rpc_name)

        async def checkout(n: int) -> None:
            try:
                await gateway.checkout(ITEMS[n % len(ITEMS)], 1 + n % 3)
            except rpc.RpcError as err:
                stats.errors += 1
                stats.codes[err.code] += 1
            finally:
                stats.calls += 1

        def shed() -> None:
            stats.shed += 1

        await open_loop(rate, stop, checkout, lambda: _write(run_dir, stats), shed)
        _write(run_dir, stats)
    directory.close()


async def open_loop(
    rate: float,
    stop: asyncio.Event,
    call: Callable[[int], Awaitable[None]],
    tick: Callable[[], None],
    shed: Callable[[], None] = lambda: None,
) -> None:
    """Start ``call(n)`` ``rate`` times a second until ``stop``: open loop (a slow answer
    does not slow the arrivals), at most ``MAX_IN_FLIGHT`` at once (past which ``shed()``);
    ``tick()`` twice a second; the calls still in flight at the end get 6 s to finish."""
    in_flight: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    ticked = 0.0
    n = 0
    while not stop.is_set():
        due = started + n / rate
        now = time.monotonic()
        if due > now:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), due - now)
            continue
        if len(in_flight) < MAX_IN_FLIGHT:
            task = asyncio.ensure_future(call(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        else:
            shed()
        n += 1
        if now - ticked >= 0.5:
            tick()
            ticked = now
    if in_flight:
        await asyncio.wait(in_flight, timeout=6.0)


def _write(run_dir: Path, stats: LoadStats) -> None:
    path = run_dir / STATS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(stats.as_dict()))
    os.replace(temporary, path)
