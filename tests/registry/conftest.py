"""Real processes for the registry tests: registry servers, providers, and the two backends.

``backend`` is parametrized over the embedded registry (a ``callscope registry``
process with tokens) and ZooKeeper (the shared ``zookeeper_hosts`` from
``callscope stack``, a fresh root per test). Each knows its credentials, how to
restart its server, and how soon a killed provider must vanish (``bound``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rpc
from rpc.registry import MemoryRegistry, Principal, Quotas, RegistryServer, connect
from tests.rpc.conftest import make_client  # noqa: F401  (an RPC client fixture, reused)

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 0.3  # the embedded backend's heartbeat interval in these tests
ZK_SESSION = 4.0  # the smallest session ZooKeeper grants with tickTime=2000
ZK_TICK = 2.0

TOKENS = {
    "admin-token": {"name": "ops", "grants": {"": "write"}},
    "provider-token": {"name": "provider", "grants": {"services": "write", "config": "read"}},
    "reader-token": {"name": "dashboard", "grants": {"": "read"}},
    "tenant-b-token": {
        "name": "tenant-b",
        "grants": {"services/b.Svc": "write", "config/b": "write"},
    },
    "nobody-token": {"name": "nobody", "grants": {}},
}
ZK_USERS = {"admin": "admin:admin-pw", "provider": "admin:admin-pw", "reader": "reader:reader-pw"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}


def wait_for(predicate: Callable[[], Any], timeout: float, step: float = 0.02) -> float:
    """Poll until ``predicate()`` is true; returns the seconds it took, fails at ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)
    return time.monotonic() - start


class Process:
    """A child process that prints one ready line; killed (by its pid) at teardown."""

    def __init__(self, argv: list[str], ready: str = "") -> None:
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in _reap)
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=self.log,
            text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if ready not in line or not line:
            self.kill()
            self.log.seek(0)
            raise AssertionError(f"{argv} did not start: {line!r}\n{self.log.read()[-3000:]}")
        self.line = line

    def _reap(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reap()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self._reap()


class EmbeddedBackend:
    name = "embedded"
    bound = 2 * HEARTBEAT  # leases expire and subscribers hear within 2 heartbeats

    def __init__(self, tmp: Path) -> None:
        self.db = tmp / "registry.db"
        self.tokens = tmp / "tokens.json"
        self.tokens.write_text(json.dumps({"tokens": TOKENS}))
        self.port = free_port()
        self.server: Process | None = None
        self.start()

    def start(self) -> None:
        self.server = Process(
            [sys.executable, "-m", "callscope", "registry", "--db", str(self.db),
             "--port", str(self.port), "--tokens", str(self.tokens)],
            ready="callscope registry on",
        )  # fmt: skip

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, who: str = "admin") -> str:
        user = f"{who}-token@" if who != "anonymous" else ""
        return f"callscope://{user}127.0.0.1:{self.port}?heartbeat={HEARTBEAT}"


class ZooKeeperBackend:
    name = "zookeeper"
    bound = ZK_SESSION + ZK_TICK + 0.5  # the server expires sessions on tick boundaries

    def __init__(self, hosts: str) -> None:
        self.hosts = hosts
        self.root = f"/callscope-test-{uuid.uuid4().hex[:8]}"

    def url(self, who: str = "admin") -> str:
        user = f"{ZK_USERS[who]}@" if who != "anonymous" else ""
        return f"zookeeper://{user}{self.hosts}{self.root}?session_timeout={ZK_SESSION}"

    def _stack(self, action: str) -> None:
        # In a child process: the stack leaves its server's Popen behind, by design. Through
        # the API rather than ``callscope stack up``, which would pin ZooKeeper and keep this
        # session from stopping it at its end.
        argv = [
            sys.executable,
            "-c",
            f"from callscope.stack import Stack; Stack().{action}(['zookeeper'])",
        ]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        self._stack("down")

    def start(self) -> None:
        self._stack("up")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(params=["embedded", pytest.param("zookeeper", marks=pytest.mark.zookeeper)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "embedded":
        embedded = EmbeddedBackend(tmp_path)
        yield embedded
        embedded.stop()
    else:
        yield ZooKeeperBackend(request.getfixturevalue("zookeeper_hosts"))


ZK = pytest.param("zookeeper", marks=pytest.mark.zookeeper)


@pytest.fixture(params=["memory", "embedded", ZK])
def open_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    opened: list[Any] = []
    server: EmbeddedBackend | None = None
    if request.param == "memory":
        shared = MemoryRegistry()
        make: Callable[[], Any] = lambda: shared  # noqa: E731
    elif request.param == "embedded":
        server = EmbeddedBackend(tmp_path)
        make = lambda: connect(server.url())  # noqa: E731
    else:
        zk = ZooKeeperBackend(request.getfixturevalue("zookeeper_hosts"))
        make = lambda: connect(zk.url())  # noqa: E731

    def open_one() -> Any:
        opened.append(make())
        return opened[-1]

    yield open_one
    for registry in reversed(opened):
        registry.close()
    if server is not None:
        server.stop()


@pytest.fixture
def providers() -> Iterator[Callable[[str], Process]]:
    """Start provider processes registered at a URL; all are killed after the test."""
    started: list[Process] = []

    def start(url: str) -> Process:
        process = Process([sys.executable, "-m", "tests.registry.provider", url], ready=":")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Close registries, directories and clients after the test, last opened first."""
    opened: list[Any] = []

    def keep(thing: Any) -> Any:
        opened.append(thing)
        return thing

    yield keep
    for thing in reversed(opened):
        thing.close()


class RawRegistry:
    """``callscope.Registry`` called method by method, as any client could (no helper
    checks in between), with one token; ``code`` gives the outcome as an error code."""

    def __init__(self, address: str, token: str | None) -> None:
        self.client = rpc.AsyncClient([address], token=token, injvm=False, timeout=10.0)

    async def call(self, method: str, *args: Any) -> Any:
        return await self.client.invoke("callscope.Registry", method, args)

    async def code(self, method: str, *args: Any) -> str:
        try:
            await self.call(method, *args)
        except rpc.RpcError as err:
            return err.code
        return "OK"

    async def session(self, interval: float = 60.0) -> str:
        return (await self.call("open_session", interval, "test"))["session"]  # type: ignore[no-any-return]


def instance(service: str = "t.Svc", address: str = "127.0.0.1:7001", **fields: Any) -> dict:
    """The wire form of a valid instance, with ``fields`` replaced."""
    return {"service": service, "address": address, "version": "1.0", "group": "", "weight": 100,
            "metadata": {"zone": "a"}, "pid": 1, "start_time": time.time(), **fields}  # fmt: skip


class InProcess:
    """In-process registry servers with the tokens of ``TOKENS``, and raw clients of them."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.servers: list[RegistryServer] = []
        self.clients: list[RawRegistry] = []

    async def start(
        self, port: int = 0, quotas: Quotas | None = None, db: str = "r.db"
    ) -> RegistryServer:
        tokens = {t: Principal(s["name"], s["grants"]) for t, s in TOKENS.items()}
        server = RegistryServer(self.tmp / db, port=port, tokens=tokens, quotas=quotas)
        self.servers.append(await server.start())
        return server

    def raw(self, server: RegistryServer, token: str | None) -> RawRegistry:
        self.clients.append(RawRegistry(server.address, token))
        return self.clients[-1]

    async def close(self) -> None:
        for client in self.clients:
            await client.client.close()
        for server in self.servers:
            if not server.server.closing:
                await server.stop(0.5)


@pytest.fixture
async def inproc(tmp_path: Path) -> Any:
    registries = InProcess(tmp_path)
    yield registries
    await registries.close()
