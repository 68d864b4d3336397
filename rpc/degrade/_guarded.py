"""Business-level degradation: a breaker and a fallback around a local function.

``@guarded(name="pricing", fallback=cached_price, error_ratio=0.5)`` wraps a sync or
async function with the same :class:`BreakerRules` as remote calls: its failures
(an :class:`~rpc.RpcError` whose code is counted, or any other exception, counted as
``INTERNAL``) feed a breaker; while it is open the fallback answers -- a function
called with the same arguments, or a fallback spec (``"null"``, ``{"action":
"value", ...}``, ``{"action": "throw", ...}``). Its state is in
:func:`rpc.degrade.breaker_states` under service ``local``; each degraded answer
(``guarded.degraded``) and change of state (``breaker.open``, ``breaker.half_open``,
``breaker.closed``) is a :func:`~rpc.degrade.local_event`, with the guard's name as
attribute ``guarded``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import RpcError
from ._breaker import DENIED, BreakerBoard, CircuitBreaker
from ._fallback import answer
from ._local_events import local_event
from ._rules import BreakerRules, Fallback

__all__ = ["LOCAL", "guarded"]

F = TypeVar("F", bound=Callable[..., Any])
DEGRADED = "guarded.degraded"
LOCAL = BreakerBoard("local")
"""The breakers of guarded local functions (service ``local``, provider ``local``)."""


def guarded(name: str | None = None, *, fallback: Any = "throw", **rules: Any) -> Callable[[F], F]:
    """Guard a local function (sync or async) with a breaker; see the module's docstring."""
    spec = (
        Fallback(action="call", function=fallback)
        if callable(fallback) and not isinstance(fallback, (str, Fallback))
        else Fallback.parse(fallback)
    )
    parsed = BreakerRules.parse({**rules, "fallback": spec})

    def wrap(fn: F) -> F:
        label = name or f"{fn.__module__}.{fn.__qualname__}"
        breaker = LOCAL.get("local", label, "local", parsed)
        breaker.on_change = lambda b: local_event(f"breaker.{b.state}", guarded=label)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                permit = breaker.acquire()
                if permit == DENIED:
                    local_event(DEGRADED, guarded=label, reason="open")
                    return await answer(spec, "local", label, args, kwargs, "degraded")
                start = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except asyncio.CancelledError:
                    breaker.release(permit)
                    raise
                except Exception as exc:
                    if _failed(breaker, permit, exc, start) and parsed.on_error:
                        local_event(DEGRADED, guarded=label, reason=_code(exc))
                        return await answer(spec, "local", label, args, kwargs, "degraded")
                    raise
                breaker.record(permit, False, time.perf_counter() - start)
                return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            permit = breaker.acquire()
            if permit == DENIED:
                local_event(DEGRADED, guarded=label, reason="open")
                return _sync_answer(spec, label, args, kwargs)
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if _failed(breaker, permit, exc, start) and parsed.on_error:
                    local_event(DEGRADED, guarded=label, reason=_code(exc))
                    return _sync_answer(spec, label, args, kwargs)
                raise
            breaker.record(permit, False, time.perf_counter() - start)
            return result

        return run  # type: ignore[return-value]

    return wrap


def _failed(breaker: CircuitBreaker, permit: int, exc: Exception, start: float) -> bool:
    """Record a raised exception; whether it counts as a failure."""
    counted = _code(exc) in breaker.rules.errors
    breaker.record(permit, counted, time.perf_counter() - start)
    return counted


def _code(exc: Exception) -> str:
    return exc.code if isinstance(exc, RpcError) else "INTERNAL"


def _sync_answer(spec: Fallback, label: str, args: Any, kwargs: Any) -> Any:
    if spec.function is not None:
        return spec.function(*args, **kwargs)
    coro = answer(spec, "local", label, args, kwargs, "degraded")
    try:
        coro.send(None)  # no fallback but a mock awaits: it finishes in one step
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"the fallback of {label} awaits; guard an async function for that")
