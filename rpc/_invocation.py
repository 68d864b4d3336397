"""What one call looks like to interceptors, and how their chain is built.

An interceptor is ``async def __call__(invocation, call_next)``: it may change
the invocation, answer without calling ``call_next`` (short-circuit), or await
``call_next(invocation)`` and observe the result or the error. Chains are built
once per client or server (Starlette-style), never per call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

__all__ = ["CallNext", "Interceptor", "Invocation", "build_chain"]

CallNext = Callable[["Invocation"], Awaitable[Any]]


class Interceptor(Protocol):
    async def __call__(self, invocation: Invocation, call_next: CallNext, /) -> Any: ...


class Invocation:
    """One call as interceptors see it, on either side.

    ``deadline`` is absolute, on the :func:`time.monotonic` clock (``None``: no
    deadline). ``peer`` is ``"host:port"`` of the other side (``"injvm"`` names the
    in-process provider on spans; the cluster chooses it per attempt); ``attempt``
    counts the tries of one call (1, 2, ...); ``local`` is the server's own bound
    ``host:port`` (server side). ``events`` collects governance decisions (retries, failovers,
    limits...) for tracing to record. ``principal`` is who the server
    authenticated (``None`` without authentication).
    """

    __slots__ = (
        "args",
        "attachments",
        "attempt",
        "deadline",
        "events",
        "group",
        "kwargs",
        "local",
        "method",
        "on_failure",
        "oneway",
        "peer",
        "pending_events",
        "principal",
        "role",
        "service",
        "version",
    )

    def __init__(
        self,
        service: str,
        method: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        version: str = "",
        group: str = "",
        attachments: dict[str, Any] | None = None,
        deadline: float | None = None,
        peer: str = "",
        role: str = "client",
        oneway: bool = False,
        principal: Any = None,
        local: str = "",
    ) -> None:
        self.service = service
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.version = version
        self.group = group
        self.attachments = attachments if attachments is not None else {}
        self.deadline = deadline
        self.peer = peer
        self.role = role
        self.oneway = oneway
        self.principal = principal
        self.local = local
        self.attempt = 1
        self.events: list[tuple[str, dict[str, Any]]] | None = None
        # Set by a cluster strategy: called inside the failed attempt (its CLIENT span
        # still open) with the error, to decide on the next attempt and say so as an event.
        self.on_failure: Callable[[Invocation, Exception], None] | None = None
        # Decisions taken before the next attempt's span opens (a route filtered, new
        # weights): the cluster moves them onto that attempt's events from inside its chain.
        self.pending_events: list[tuple[str, dict[str, Any]]] | None = None

    def copy(self) -> Invocation:
        """A separate attempt of the same call (forking, broadcast): its own attachments,
        peer and events, so concurrent attempts never write into each other."""
        other = Invocation(
            self.service,
            self.method,
            self.args,
            self.kwargs,
            version=self.version,
            group=self.group,
            attachments=dict(self.attachments),
            deadline=self.deadline,
            peer=self.peer,
            role=self.role,
            oneway=self.oneway,
            principal=self.principal,
            local=self.local,
        )
        other.attempt = self.attempt
        if self.pending_events:
            other.pending_events = list(self.pending_events)
        return other

    def remaining(self) -> float | None:
        """Seconds left before the deadline (may be negative), or ``None``."""
        if self.deadline is None:
            return None
        return self.deadline - time.monotonic()

    def add_event(self, name: str, **attributes: Any) -> None:
        """Record a governance decision for tracing (a span event)."""
        if self.events is None:
            self.events = []
        self.events.append((name, attributes))

    def add_pending_event(self, name: str, **attributes: Any) -> None:
        """Record a decision for the next attempt's span (it is not open yet)."""
        if self.pending_events is None:
            self.pending_events = []
        self.pending_events.append((name, attributes))

    def __repr__(self) -> str:
        return (
            f"Invocation({self.role} {self.service}/{self.method} peer={self.peer!r} "
            f"attempt={self.attempt})"
        )


def build_chain(interceptors: Sequence[Interceptor], terminal: CallNext) -> CallNext:
    """Wrap ``terminal`` so the first interceptor runs outermost."""
    handler = terminal
    for interceptor in reversed(interceptors):
        handler = _link(interceptor, handler)
    return handler


def _link(interceptor: Interceptor, call_next: CallNext) -> CallNext:
    def step(invocation: Invocation) -> Awaitable[Any]:
        return interceptor(invocation, call_next)

    return step
