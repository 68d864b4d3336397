"""A request's tag travels with every call it causes (tag routing across hops).

On the provider, :class:`TagContext` (a server interceptor; :func:`carry_tags` installs
it in every server of the process) makes the incoming ``tag`` attachment the current
tag while the handler runs; a client call made meanwhile carries it on (``AsyncClient``
adds it to calls that have none), so a gray request stays on gray providers hop after hop.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from .._defaults import add_global_interceptor
from .._invocation import CallNext, Invocation

__all__ = ["TAG", "TagContext", "carry_tags", "current_tag"]

TAG = "tag"  # the attachment
_current: ContextVar[str | None] = ContextVar("callscope_tag", default=None)


def current_tag() -> str | None:
    """The tag of the request this code is serving, if any."""
    return _current.get()


class TagContext:
    """Server interceptor: the incoming call's tag is current while its handler runs."""

    async def __call__(self, invocation: Invocation, call_next: CallNext, /) -> Any:
        tag = invocation.attachments.get(TAG)
        if not isinstance(tag, str) or not tag:
            return await call_next(invocation)
        token = _current.set(tag)
        try:
            return await call_next(invocation)
        finally:
            _current.reset(token)


_installed = TagContext()


def carry_tags() -> None:
    """Install :class:`TagContext` in every server created from now on in this process."""
    add_global_interceptor(_installed, side="server")
