"""Fixtures for the RPC tests: real servers on 127.0.0.1, started and drained per test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

import rpc


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Segment:
    start: Point
    end: Point
    label: str = ""


@rpc.service("test.Echo")
class Echo:
    """A provider exercising sync and async methods, dataclasses and failures."""

    def __init__(self) -> None:
        self.oneway_seen: asyncio.Queue[Any] | None = None
        self.cancelled = 0
        self.finished = 0

    async def echo(self, value: Any) -> Any:
        return value

    def echo_sync(self, value: Any) -> Any:
        return value

    def add(self, a: int, b: int = 0) -> int:
        return a + b

    async def sleep(self, seconds: float) -> float:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return seconds

    def sleep_sync(self, seconds: float) -> float:
        import time

        time.sleep(seconds)
        return seconds

    def length(self, segment: Segment) -> float:
        dx = segment.end.x - segment.start.x
        dy = segment.end.y - segment.start.y
        return (dx * dx + dy * dy) ** 0.5

    def mirror(self, segment: Segment) -> Segment:
        return Segment(segment.end, segment.start, segment.label[::-1])

    def fail(self, message: str) -> None:
        raise ZeroDivisionError(message)

    def deny(self) -> None:
        raise rpc.PermissionDeniedError("not for you")

    async def record(self, value: Any) -> None:
        if self.oneway_seen is not None:
            await self.oneway_seen.put(value)

    def whoami(self) -> str:
        return "echo"


class EchoApi(Protocol):
    """The typed consumer view of test.Echo."""

    async def mirror(self, segment: Segment) -> Segment: ...
    async def length(self, segment: Segment) -> float: ...


ServerFactory = Callable[..., Awaitable[rpc.Server]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """Start servers exporting the given objects; they are stopped after the test."""
    servers: list[rpc.Server] = []

    async def make(*services: Any, port: int = 0, **options: Any) -> rpc.Server:
        options.setdefault("injvm", False)
        server = rpc.Server("127.0.0.1", port, **options)
        for svc in services or (Echo(),):
            server.export(svc)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop(grace=1.0)


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., rpc.AsyncClient]]:
    clients: list[rpc.AsyncClient] = []

    def make(*args: Any, **options: Any) -> rpc.AsyncClient:
        options.setdefault("injvm", False)
        client = rpc.AsyncClient(*args, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@contextmanager
def server_in_thread(*services: Any, **options: Any) -> Iterator[rpc.Server]:
    """A server on its own loop thread, for tests of the blocking client."""
    from rpc._loop import LoopThread

    thread = LoopThread("test-server")
    options.setdefault("injvm", False)

    async def start() -> rpc.Server:
        server = rpc.Server("127.0.0.1", 0, **options)
        for svc in services or (Echo(),):
            server.export(svc)
        return await server.start()

    server = thread.run(start())
    try:
        yield server
    finally:
        thread.run(server.stop(grace=1.0))
        thread.stop()
