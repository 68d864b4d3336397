"""Unary echo benchmark: callscope against grpc.aio, in one run, on loopback.

Why this shape: a ratio is only meaningful when both stacks are measured on
the same machine in the same minute, so every run measures both, interleaved.
Each server runs in its own subprocess and every measurement's client runs in
another fresh subprocess, so client and server never share a process (or a
GIL) and one stack's state (grpc's threads, a loop policy) cannot leak into
the other's numbers.

Closed loop: ``inflight`` workers each await a call and then issue the next.
After a warm-up, calls that *complete* inside the window are counted (QPS) and
their per-call ``perf_counter`` deltas give the latency percentiles.

Usage::

    .venv/bin/python benchmarks/rpc_echo.py --seconds 5

Progress lines go first; the last line is one JSON object (see ``summarize``).
``--profile DIR`` instead runs only callscope at 64 in flight with cProfile in
both the client and the server process and writes ``DIR/{client,server}.prof``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime
import json
import os
import platform
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import rpc

SCRIPT = Path(__file__).resolve()
HOST = "127.0.0.1"
SERVICE = "bench.Echo"
SYNC_SERVICE = "bench.EchoSync"
GRPC_METHOD = "/bench.Echo/Echo"
SERVER_START_TIMEOUT = 30.0

# (label, client kind, server, service, calls in flight), run in this order:
# callscope and grpc alternate so slow drift of a noisy machine hits both.
PLAN: list[tuple[str, str, str, str, int]] = [
    ("callscope async, 1 in flight", "callscope", "callscope", SERVICE, 1),
    ("grpc.aio, 1 in flight", "grpc", "grpc", "", 1),
    ("callscope async, 64 in flight", "callscope", "callscope", SERVICE, 64),
    ("grpc.aio, 64 in flight", "grpc", "grpc", "", 64),
    ("callscope sync Client, 1 in flight", "callscope-sync", "callscope", SERVICE, 1),
    ("callscope sync handler, 64 in flight", "callscope", "callscope", SYNC_SERVICE, 64),
]


# -- services -----------------------------------------------------------------
@rpc.service(SERVICE)
class Echo:
    """The measured handler: returns its argument, so only the framework costs."""

    async def echo(self, data: bytes) -> bytes:
        return data


@rpc.service(SYNC_SERVICE)
class EchoSync:
    """The same on the server's thread pool, to show what a blocking handler costs."""

    def echo(self, data: bytes) -> bytes:
        return data


# -- helpers ------------------------------------------------------------------
def loop_name() -> str:
    """``uvloop`` or ``asyncio``: which loop the running coroutine is on."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (seconds in, seconds out)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def stats(latencies: list[float], elapsed: float, cpu: float) -> dict[str, Any]:
    """QPS, latency percentiles (ms) and client CPU per call of the calls in the window.

    CPU per call is the number that survives a noisy machine: QPS depends on
    what else runs, the CPU a call costs mostly does not.
    """
    ordered = sorted(latencies)
    return {
        "calls": len(ordered),
        "qps": len(ordered) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(ordered, 0.50) * 1e3,
        "p90_ms": percentile(ordered, 0.90) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "mean_ms": (sum(ordered) / len(ordered) * 1e3) if ordered else 0.0,
        "client_cpu_us_per_call": (cpu / len(ordered) * 1e6) if ordered else 0.0,
    }


async def closed_loop(
    call: Callable[[], Awaitable[Any]], inflight: int, warmup: float, seconds: float
) -> dict[str, Any]:
    """``inflight`` workers back to back; counts completions inside the window."""
    clock = time.perf_counter
    window = [float("inf"), float("inf")]  # start, end (end stays inf while measuring)
    latencies: list[float] = []
    record = latencies.append
    running = True

    async def worker() -> None:
        while running:
            t0 = clock()
            await call()
            t1 = clock()
            if window[0] <= t1 <= window[1]:
                record(t1 - t0)

    tasks = [asyncio.ensure_future(worker()) for _ in range(inflight)]
    try:
        await asyncio.sleep(warmup)
        cpu0 = time.process_time()
        window[0] = clock()
        await asyncio.sleep(seconds)
        window[1] = clock()
        cpu1 = time.process_time()
        running = False
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return stats(latencies, window[1] - window[0], cpu1 - cpu0)


def blocking_loop(call: Callable[[], Any], warmup: float, seconds: float) -> dict[str, Any]:
    """One thread calling back to back: the sync facade's 1-in-flight cost."""
    clock = time.perf_counter
    end = clock() + warmup
    while clock() < end:
        call()
    latencies: list[float] = []
    cpu0 = time.process_time()
    start = clock()
    end = start + seconds
    t1 = start
    while t1 < end:
        t0 = clock()
        call()
        t1 = clock()
        if t1 <= end:
            latencies.append(t1 - t0)
    return stats(latencies, min(t1, end) - start, time.process_time() - cpu0)


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the block into ``path`` when one is given."""
    if not path:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


async def until_told_to_stop() -> None:
    """Return when stdin closes (the benchmark ended or died) or on SIGTERM/SIGINT.

    Watching stdin means a server never outlives the benchmark, even if the
    benchmark is killed with SIGKILL.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def stop() -> None:
        if not done.done():
            done.set_result(None)

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stop)

    threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    await done


def git_revision() -> str:
    """The commit measured, with ``+dirty`` when ``rpc/`` has uncommitted changes."""
    root = SCRIPT.parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "rpc"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{head}+dirty" if head and dirty else head


def machine() -> dict[str, Any]:
    """Where and when a run was measured, for every benchmark's summary."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
    }


def window_parser(description: str | None) -> argparse.ArgumentParser:
    """A parser with the measurement window every benchmark takes (see :func:`window_args`)."""
    parser = argparse.ArgumentParser(description=(description or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="window per measurement")
    parser.add_argument("--warmup", type=float, default=None, help="default: seconds/3 in 0.2..1")
    return parser


def window_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, check the window and fill in the default warm-up."""
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    if args.warmup is None:
        args.warmup = min(1.0, max(0.2, args.seconds / 3))
    return args


def announce(port: int) -> None:
    """The one line the benchmark waits for: the bound port and the loop in use."""
    print(json.dumps({"port": port, "loop": loop_name()}), flush=True)


# -- server roles ----------------------------------------------------------------
async def serve_callscope() -> None:
    server = rpc.Server(HOST, 0)
    server.export(Echo())
    server.export(EchoSync())
    await server.start()
    announce(server.port)
    try:
        await until_told_to_stop()
    finally:
        await server.stop(grace=1.0)


async def serve_grpc() -> None:
    import grpc

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{HOST}:0")
    await server.start()
    announce(port)
    try:
        await until_told_to_stop()
    finally:
        await server.stop(grace=1.0)


# -- client roles ----------------------------------------------------------------
async def client_callscope(
    port: int, service: str, inflight: int, warmup: float, seconds: float, size: int
) -> dict[str, Any]:
    payload = os.urandom(size)
    client = rpc.AsyncClient([f"{HOST}:{port}"])
    try:
        echo = client.proxy(service).echo
        if await echo(payload) != payload:
            raise AssertionError("callscope echo returned something else")
        result = await closed_loop(lambda: echo(payload), inflight, warmup, seconds)
    finally:
        await client.close()
    return {**result, "loop": loop_name()}


def client_callscope_sync(port: int, warmup: float, seconds: float, size: int) -> dict[str, Any]:
    async def probe() -> str:
        return loop_name()

    payload = os.urandom(size)
    with rpc.Client([f"{HOST}:{port}"]) as client:
        echo = client.proxy(SERVICE).echo
        if echo(payload) != payload:
            raise AssertionError("callscope echo returned something else")
        result = blocking_loop(lambda: echo(payload), warmup, seconds)
        loop = client.run(probe())
    return {**result, "loop": loop}


async def client_grpc(
    port: int, inflight: int, warmup: float, seconds: float, size: int
) -> dict[str, Any]:
    import grpc

    payload = os.urandom(size)
    async with grpc.aio.insecure_channel(f"{HOST}:{port}") as channel:
        await asyncio.wait_for(channel.channel_ready(), 10)
        stub = channel.unary_unary(GRPC_METHOD)
        if await stub(payload) != payload:
            raise AssertionError("grpc echo returned something else")
        result = await closed_loop(lambda: stub(payload), inflight, warmup, seconds)
    return {**result, "loop": loop_name(), "grpcio": grpc.__version__}


def run_role(args: argparse.Namespace) -> None:
    """Subprocess entry: one server, or one measurement printed as a JSON line."""
    with profiled(args.profile_out):
        if args.serve == "callscope":
            rpc.run(serve_callscope())
        elif args.serve == "grpc":
            asyncio.run(serve_grpc())  # grpc.aio does not support uvloop
        elif args.client == "callscope":
            result = rpc.run(
                client_callscope(
                    args.port, args.service, args.inflight, args.warmup, args.seconds, args.payload
                )
            )
        elif args.client == "callscope-sync":
            result = client_callscope_sync(args.port, args.warmup, args.seconds, args.payload)
        else:
            result = asyncio.run(
                client_grpc(args.port, args.inflight, args.warmup, args.seconds, args.payload)
            )
    if args.client:
        print(json.dumps(result), flush=True)


# -- the orchestrating process ----------------------------------------------------
class ServerProcess:
    """A server subprocess; closing its stdin tells it to stop.

    ``script`` is the benchmark whose ``--serve KIND`` role it runs, with ``options``
    (another benchmark may reuse this with roles of its own, announced with
    :func:`announce`).
    """

    def __init__(
        self,
        kind: str,
        profile_out: str | None = None,
        script: Path = SCRIPT,
        options: Sequence[str] = (),
    ) -> None:
        cmd = [sys.executable, str(script), "--serve", kind, *options]
        if profile_out:
            cmd += ["--profile-out", profile_out]
        self.kind = kind
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            hello = json.loads(self._first_line())
        except BaseException:
            self.stop()
            raise
        self.port: int = hello["port"]
        self.loop: str = hello["loop"]

    def _first_line(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server did not report its port")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"{self.kind} server exited before reporting its port")
                data += chunk
        return data.decode().splitlines()[0]

    def cpu_seconds(self) -> float | None:
        """CPU time (all threads) the server has used so far; ``None`` off Linux."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Graceful first (stdin EOF), then SIGTERM, then SIGKILL: never leave one running."""
        proc = self.proc
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        for escalate in (None, proc.terminate, proc.kill):
            if escalate is not None and proc.poll() is None:
                escalate()
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout is not None:
            proc.stdout.close()


def server_cpu_per_call(
    server: ServerProcess, cpu0: float | None, res: dict[str, Any], args: argparse.Namespace
) -> float:
    """The server's CPU µs per call of a measurement that began at ``cpu0`` (its CPU then)."""
    cpu1 = server.cpu_seconds()
    # The server works through warm-up and window; scale the window's calls up.
    calls = res["calls"] * (args.warmup + args.seconds) / args.seconds
    return (cpu1 - cpu0) / calls * 1e6 if cpu0 is not None and cpu1 is not None and calls else 0.0


def measure(
    client: str,
    port: int,
    service: str,
    inflight: int,
    args: argparse.Namespace,
    profile_out: str | None = None,
) -> dict[str, Any]:
    """One measurement in a fresh client subprocess; returns its JSON result."""
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--client",
        client,
        "--port",
        str(port),
        "--inflight",
        str(inflight),
        "--seconds",
        str(args.seconds),
        "--warmup",
        str(args.warmup),
        "--payload",
        str(args.payload),
    ]
    if service:
        cmd += ["--service", service]
    if profile_out:
        cmd += ["--profile-out", profile_out]
    return last_json(cmd, args.seconds + args.warmup + 60, f"{client} client")


def last_json(cmd: list[str], timeout: float, what: str) -> dict[str, Any]:
    """Run a measuring subprocess; the JSON object on its last line."""
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(
    results: dict[tuple[str, str, int], dict[str, Any]],
    servers: dict[str, ServerProcess],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The final JSON: targeted keys first, then the context needed to read them."""
    cs1 = results[("callscope", SERVICE, 1)]
    cs64 = results[("callscope", SERVICE, 64)]
    g1 = results[("grpc", "", 1)]
    g64 = results[("grpc", "", 64)]
    sync1 = results[("callscope-sync", SERVICE, 1)]
    synch64 = results[("callscope", SYNC_SERVICE, 64)]
    ratio_qps_64 = cs64["qps"] / g64["qps"] if g64["qps"] else 0.0
    ratio_p50_1 = cs1["p50_ms"] / g1["p50_ms"] if g1["p50_ms"] else 0.0
    r = 3
    return {
        "qps_64": round(cs64["qps"], 1),
        "grpc_aio_qps_64": round(g64["qps"], 1),
        "ratio_qps_64": round(ratio_qps_64, r),
        "p50_1_ms": round(cs1["p50_ms"], r),
        "grpc_aio_p50_1_ms": round(g1["p50_ms"], r),
        "ratio_p50_1": round(ratio_p50_1, r),
        "target_ratio_qps_64_ge_5": ratio_qps_64 >= 5,
        "target_ratio_p50_1_le_0_25": ratio_p50_1 <= 0.25,
        "qps_1": round(cs1["qps"], 1),
        "grpc_aio_qps_1": round(g1["qps"], 1),
        "ratio_qps_1": round(cs1["qps"] / g1["qps"], r) if g1["qps"] else 0.0,
        "p99_1_ms": round(cs1["p99_ms"], r),
        "grpc_aio_p99_1_ms": round(g1["p99_ms"], r),
        "p50_64_ms": round(cs64["p50_ms"], r),
        "p99_64_ms": round(cs64["p99_ms"], r),
        "grpc_aio_p50_64_ms": round(g64["p50_ms"], r),
        "grpc_aio_p99_64_ms": round(g64["p99_ms"], r),
        "client_cpu_us_per_call_64": round(cs64["client_cpu_us_per_call"], 1),
        "server_cpu_us_per_call_64": round(cs64["server_cpu_us_per_call"], 1),
        "grpc_aio_client_cpu_us_per_call_64": round(g64["client_cpu_us_per_call"], 1),
        "grpc_aio_server_cpu_us_per_call_64": round(g64["server_cpu_us_per_call"], 1),
        "sync_client_qps_1": round(sync1["qps"], 1),
        "sync_client_p50_1_ms": round(sync1["p50_ms"], r),
        "sync_client_p99_1_ms": round(sync1["p99_ms"], r),
        "sync_handler_qps_64": round(synch64["qps"], 1),
        "sync_handler_p50_64_ms": round(synch64["p50_ms"], r),
        "sync_handler_p99_64_ms": round(synch64["p99_ms"], r),
        "callscope_client_loop": cs64["loop"],
        "callscope_server_loop": servers["callscope"].loop,
        "uvloop": cs64["loop"] == "uvloop" and servers["callscope"].loop == "uvloop",
        "grpc_aio_client_loop": g64["loop"],
        "grpc_aio_server_loop": servers["grpc"].loop,
        "grpcio": g64.get("grpcio", ""),
        "seconds": args.seconds,
        "warmup": args.warmup,
        "payload_bytes": args.payload,
        **machine(),
    }


def orchestrate(args: argparse.Namespace) -> None:
    """Start both servers, run the plan, print progress and then the JSON line."""
    started = time.monotonic()
    print(
        f"rpc_echo: {args.payload}-byte unary echo, window {args.seconds}s "
        f"(+{args.warmup}s warm-up) per measurement, python {platform.python_version()}",
        flush=True,
    )
    servers: dict[str, ServerProcess] = {}
    try:
        if args.profile:
            out = Path(args.profile)
            out.mkdir(parents=True, exist_ok=True)
            servers["callscope"] = ServerProcess("callscope", str(out / "server.prof"))
            res = measure(
                "callscope", servers["callscope"].port, SERVICE, 64, args, str(out / "client.prof")
            )
            print(f"profiled callscope 64 in flight: {res['qps']:.0f} qps (under cProfile)")
            servers.pop("callscope").stop()
            print(json.dumps({"profile_dir": str(out), **res}))
            return
        for kind in ("callscope", "grpc"):
            servers[kind] = ServerProcess(kind)
            print(f"  {kind} server on port {servers[kind].port} ({servers[kind].loop})")
        results: dict[tuple[str, str, int], dict[str, Any]] = {}
        for label, client, server, service, inflight in PLAN:
            cpu0 = servers[server].cpu_seconds()
            res = measure(client, servers[server].port, service, inflight, args)
            res["server_cpu_us_per_call"] = server_cpu_per_call(servers[server], cpu0, res, args)
            results[(client, service, inflight)] = res
            print(
                f"  {label:<38} {res['qps']:>8.0f} qps  p50 {res['p50_ms']:6.3f} ms  "
                f"p99 {res['p99_ms']:6.3f} ms  CPU/call client {res['client_cpu_us_per_call']:4.0f}"
                f" server {res['server_cpu_us_per_call']:4.0f} us  [{res['loop']}]",
                flush=True,
            )
    finally:
        for server_process in servers.values():
            server_process.stop()
    summary = summarize(results, servers, args)
    print(
        f"  ratio_qps_64 {summary['ratio_qps_64']} (target >= 5), "
        f"ratio_p50_1 {summary['ratio_p50_1']} (target <= 0.25); "
        f"took {time.monotonic() - started:.1f}s",
        flush=True,
    )
    print(json.dumps(summary), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = window_parser(__doc__)
    parser.add_argument("--payload", type=int, default=100, help="request bytes")
    parser.add_argument("--profile", metavar="DIR", help="cProfile callscope at 64 in flight")
    # Internal: the roles the orchestrator starts in subprocesses.
    parser.add_argument("--serve", choices=["callscope", "grpc"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--client", choices=["callscope", "callscope-sync", "grpc"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--service", default=SERVICE, help=argparse.SUPPRESS)
    parser.add_argument("--inflight", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    return window_args(parser, argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve or args.client:
        run_role(args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
