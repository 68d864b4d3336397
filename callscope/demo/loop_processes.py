"""The closed loop's two kinds of process (internal commands of :mod:`callscope.demo.loop`).

``callscope demo-loop-provider N``: serves ``loop.WorkService/work`` on an ephemeral port,
taking :data:`WORK_S` plus whatever delay its fault file holds (the demo's
:class:`~callscope.demo.faults.FaultSwitch`), answers with its own address, and is
published to the registry. ``callscope demo-loop-consumer``: calls ``work`` ``--qps``
times a second through the registry with a weighted round-robin balancer (no latency
sense of its own: only the registry's weights can move its traffic), and appends one line
per answered call, ``<sent, s since the epoch> <provider address>``, to ``run/calls.log``.
Both are traced (``import instrument.auto``) into the Kafka topic they are given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

import rpc
from rpc.registry import REGISTRY_URL_ENV

from .faults import FaultSwitch
from .load import open_loop, qps
from .topology import Instance

__all__ = ["CALLS_FILE", "SERVICE", "provider_instance", "register"]

SERVICE = "loop.WorkService"
PROVIDER_APP = "loop-provider"
CALLS_FILE = "calls.log"
WORK_S = 0.002
BALANCER = "round_robin"


def provider_instance(n: int) -> Instance:
    """The fault-file identity of provider ``n`` (from 1)."""
    return Instance(PROVIDER_APP, n)


def register(sub: argparse._SubParsersAction) -> None:
    registry = {"default": os.environ.get(REGISTRY_URL_ENV),
                "required": not os.environ.get(REGISTRY_URL_ENV)}  # fmt: skip
    p = sub.add_parser("demo-loop-provider")  # internal: no help, so not listed
    p.add_argument("number", type=int)
    p.add_argument("--registry", **registry)
    p.add_argument("--workdir", type=Path, required=True)
    p.set_defaults(handler=run_provider)
    c = sub.add_parser("demo-loop-consumer")  # internal
    c.add_argument("--registry", **registry)
    c.add_argument("--workdir", type=Path, required=True)
    c.add_argument("--qps", type=qps, default=40.0)
    c.set_defaults(handler=run_consumer)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def run_provider(args: argparse.Namespace) -> int:
    import instrument.auto  # noqa: F401 - traced through the CALLSCOPE_* variables it was given

    rpc.run(_provide(args.number, args.registry, args.workdir))
    return 0


async def _provide(number: int, registry_url: str, workdir: Path) -> None:
    from rpc.registry import connect, publish

    faults = FaultSwitch(workdir / "faults", provider_instance(number))
    server = rpc.Server("127.0.0.1", 0)

    @rpc.service(SERVICE)
    class Work:
        async def work(self) -> str:
            faults.refresh()
            await asyncio.sleep(WORK_S + faults.delay_s)
            return server.address

    stop = _stop_event()
    registry = connect(registry_url)
    server.export(Work())
    await server.start()
    publication = await publish(server, registry)
    path = workdir / "run" / f"provider{number}.addr"
    path.with_suffix(".tmp").write_text(server.address)
    os.replace(path.with_suffix(".tmp"), path)
    try:
        await stop.wait()
    finally:
        await publication.stop(grace=3.0)
        registry.close()


def run_consumer(args: argparse.Namespace) -> int:
    import instrument.auto  # noqa: F401

    rpc.run(_consume(args.registry, args.workdir, args.qps))
    return 0


async def _consume(registry_url: str, workdir: Path, rate: float) -> None:
    from rpc.registry import RegistryDirectory, connect

    stop = _stop_event()
    directory = RegistryDirectory(connect(registry_url), cache_dir=workdir / "cache" / "consumer")
    lines: list[str] = []
    with open(workdir / "run" / CALLS_FILE, "a") as log:

        def flush() -> None:
            log.write("".join(lines))
            log.flush()
            lines.clear()

        async with rpc.AsyncClient(directory, injvm=False, cluster="failfast",
                                   balancer=BALANCER, timeout=5.0) as client:  # fmt: skip
            proxy = client.proxy(SERVICE)

            async def call(n: int) -> None:
                sent = time.time()
                with contextlib.suppress(rpc.RpcError):
                    lines.append(f"{sent:.3f} {await proxy.work()}\n")

            await open_loop(rate, stop, call, flush)
        flush()
    directory.close()
