"""The blocking facade: :class:`Client` runs an :class:`AsyncClient` on a loop thread."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, overload

from ._client import (
    AsyncClient,
    BaseProxy,
    Call,
    CallOptions,
    MethodRef,
    Outcome,
    completion_callback,
)
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

    def run(self, coro: Any) -> Any:
        """Run a coroutine of the underlying :class:`AsyncClient` and block for it."""
        return self._thread.run(coro)

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return self._thread.submit(coro)

    @overload
    def proxy(self, service: str, iface: type[T], **options: Any) -> T: ...
    @overload
    def proxy(self, service: str, iface: None = None, **options: Any) -> Any: ...
    def proxy(self, service: str, iface: type[Any] | None = None, **options: Any) -> Any:
        """A proxy whose methods block; typed by ``iface`` (a Protocol) if given."""
        return Proxy(self, service, iface, CallOptions(**options))

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


class Method(MethodRef):
    """One remote method: ``m(...)`` blocks; ``future``, ``callback`` and ``oneway`` do not wait."""

    __slots__ = ()
    _client: Client

    async def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = await self._client.aio.invoke(
            self._service, self._method, args, kwargs or None, self._options
        )
        return result if self._convert is None else self._convert(result)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._client.run(self._call(args, kwargs))

    def future(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Start the call; returns a :class:`concurrent.futures.Future`."""
        return self._client.submit(self._call(args, kwargs))

    def callback(
        self, *args: Any, on_done: Callable[[Any, RpcError | None], None], **kwargs: Any
    ) -> None:
        """Start the call; ``on_done(result, error)`` runs on the client's loop thread."""
        self.future(*args, **kwargs).add_done_callback(completion_callback(on_done))

    def oneway(self, *args: Any, **kwargs: Any) -> None:
        """Fire and forget: returns once the request is written."""
        self._client.run(
            self._client.aio.invoke(
                self._service, self._method, args, kwargs or None, self._options, oneway=True
            )
        )


class Proxy(BaseProxy):
    """A proxy whose methods block."""

    method_class = Method
