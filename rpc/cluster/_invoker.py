"""The innermost step of a call: an :class:`Invoker` delivers one attempt and returns its result.

The socket invoker sends frames to ``invocation.peer``; the in-process invoker calls
a service exported in this process; :class:`MockInvoker` answers from a function,
so strategies, balancers and interceptors are tested without sockets or sleeps
(as httpx's ``MockTransport`` is).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._invocation import Invocation

__all__ = ["Attempted", "Invoker", "MockInvoker"]


@runtime_checkable
class Invoker(Protocol):
    """Delivers one attempt of a call to ``invocation.peer`` (already chosen by the cluster)."""

    async def invoke(self, invocation: Invocation) -> Any: ...

    def unavailable(self) -> Collection[str]:
        """Addresses not to pick now (a link in reconnect backoff...); usually empty."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Attempted:
    """What a :class:`MockInvoker` saw of one attempt (the invocation itself changes later)."""

    peer: str
    service: str
    method: str
    args: tuple[Any, ...]
    attempt: int
    attachments: dict[str, Any]


class MockInvoker:
    """An invoker that answers with ``handler(invocation)``: a value, an awaitable, or a raise.

    Every attempt is recorded in :attr:`calls`; ``down`` holds addresses reported
    unavailable to the cluster (as a socket in reconnect backoff would be).
    """

    def __init__(self, handler: Callable[[Invocation], Any | Awaitable[Any]]) -> None:
        self.handler = handler
        self.calls: list[Attempted] = []
        self.down: set[str] = set()
        self.closed = False

    async def invoke(self, invocation: Invocation) -> Any:
        self.calls.append(
            Attempted(
                invocation.peer,
                invocation.service,
                invocation.method,
                tuple(invocation.args),
                invocation.attempt,
                dict(invocation.attachments),
            )
        )
        result = self.handler(invocation)
        if inspect.isawaitable(result):
            result = await result
        return result

    def unavailable(self) -> Collection[str]:
        return self.down

    async def close(self) -> None:
        self.closed = True

    def peers(self) -> list[str]:
        """The provider of each attempt, in order."""
        return [call.peer for call in self.calls]
