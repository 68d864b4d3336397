"""The blocking facade: :class:`Client` runs an :class:`AsyncClient` on a loop thread.

Nothing here decides anything: every method hands the same call to the
:class:`AsyncClient` on the loop thread and blocks for it (or returns a future).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar, overload

from ._client import AsyncClient, AsyncMethod, AsyncProxy, Call, Outcome, completion_callback
from ._directory import Directory
from ._errors import RpcError
from ._loop import LoopThread

__all__ = ["Client"]

T = TypeVar("T")


class Client:
    """A blocking client. Takes the same options as :class:`AsyncClient`.

    Calls block the calling thread; ``future()`` and ``callback()`` do not.
    Callbacks run on the client's loop thread: keep them short.
    """

    def __init__(
        self, providers: Directory | Sequence[str] | str | None = None, **options: Any
    ) -> None:
        self._thread = LoopThread()

        async def build() -> AsyncClient:
            return AsyncClient(providers, **options)

        self.aio: AsyncClient = self._thread.run(build())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the underlying :class:`AsyncClient` and block for it."""
        return self._thread.run(coro)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return self._thread.submit(coro)

    @overload
    def proxy(self, service: str, iface: type[T], **options: Any) -> T: ...
    @overload
    def proxy(self, service: str, iface: None = None, **options: Any) -> Any: ...
    def proxy(self, service: str, iface: type[Any] | None = None, **options: Any) -> Any:
        """A proxy whose methods block; typed by ``iface`` (a Protocol) if given."""
        return Proxy(self, self.aio.proxy(service, iface, **options))

    def generic(self, service: str, method: str, *args: Any, **options: Any) -> Any:
        """Call without an interface; arguments and result are plain data."""
        return self.run(self.aio.generic(service, method, *args, **options))

    def parallel(self, calls: Iterable[Call], *, return_exceptions: bool = False) -> list[Any]:
        return self.run(self.aio.parallel(list(calls), return_exceptions=return_exceptions))

    def broadcast(self, service: str, method: str, *args: Any, **options: Any) -> list[Outcome]:
        return self.run(self.aio.broadcast(service, method, *args, **options))

    def forking(self, service: str, method: str, *args: Any, forks: int = 2, **options: Any) -> Any:
        return self.run(self.aio.forking(service, method, *args, forks=forks, **options))

    def close(self) -> None:
        if not self._thread.loop.is_closed():
            self.run(self.aio.close())
            self._thread.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _on_loop(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Start the async call on the loop thread (the cluster's state lives there)."""
    return await fn(*args, **kwargs)


class Method:
    """One remote method: ``m(...)`` blocks; ``future``, ``callback`` and ``oneway`` do not wait."""

    __slots__ = ("_aio", "_client")

    def __init__(self, client: Client, aio: AsyncMethod) -> None:
        self._client = client
        self._aio = aio

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.run(_on_loop(self._aio, args, kwargs))

    def future(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Start the call; returns a :class:`concurrent.futures.Future`."""
        return self._client.submit(_on_loop(self._aio, args, kwargs))

    def callback(
        self, *args: Any, on_done: Callable[[Any, RpcError | None], None], **kwargs: Any
    ) -> None:
        """Start the call; ``on_done(result, error)`` runs on the client's loop thread."""
        self.future(*args, **kwargs).add_done_callback(completion_callback(on_done))

    def oneway(self, *args: Any, **kwargs: Any) -> None:
        """Fire and forget: returns once the request is written."""
        self._client.run(_on_loop(self._aio.oneway, args, kwargs))


class Proxy:
    """A proxy whose methods block: each wraps the async proxy's method of the same name."""

    def __init__(self, client: Client, aio: AsyncProxy) -> None:
        self._client = client
        self._aio = aio

    def __getattr__(self, name: str) -> Method:
        if name.startswith("_"):
            raise AttributeError(name)
        method = Method(self._client, getattr(self._aio, name))
        setattr(self, name, method)
        return method

    def __repr__(self) -> str:
        return f"<Proxy {self._aio._service!r}>"
