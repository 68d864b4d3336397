"""Answering a degraded call: a value, an error, or a local mock found by name.

Mocks are classes (or objects) implementing the service's interface, registered in
the ``mocks`` kind of the extension registry -- ``@rpc.extension("mocks",
"orders.OrderService")`` or the ``callscope.mocks`` entry points -- so a registry
document can only choose among mocks the process itself registered, never import code.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any

from .._errors import UnavailableError, error_for_code
from .._extensions import extension_point
from ._rules import Fallback

__all__ = ["MOCKS", "answer"]

MOCKS = extension_point("mocks")
_INSTANCES: dict[type, Any] = {}  # mock class → its one instance
_LOCK = threading.Lock()


async def answer(
    fallback: Fallback,
    service: str,
    method: str,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    why: str = "degraded",
) -> Any:
    """What ``fallback`` says ``service.method(*args, **kwargs)`` returns (or raises)."""
    action = fallback.action
    if fallback.function is not None:
        result = fallback.function(*args, **(kwargs or {}))
        return await result if inspect.isawaitable(result) else result
    if action == "null":
        return None
    if action == "value":
        return fallback.value
    if action == "mock":
        target = getattr(mock_for(fallback.mock or service, service), method, None)
        if target is None or not callable(target):
            raise UnavailableError(f"{service}/{method} is {why}, and its mock has no {method!r}")
        result = target(*args, **(kwargs or {}))
        return await result if inspect.isawaitable(result) else result
    message = fallback.message or f"{service}/{method} is {why}"
    raise error_for_code(fallback.code)(message, code=fallback.code)


def mock_for(mock: Any, service: str) -> Any:
    """The mock instance: a registered name, a class (made once) or an object as given."""
    if isinstance(mock, str):
        try:
            mock = MOCKS.get(mock)
        except LookupError:
            raise UnavailableError(
                f"{service} is degraded to a mock, but no mock {mock!r} is registered "
                "(rpc.extension('mocks', name))"
            ) from None
    if not inspect.isclass(mock):
        return mock
    instance = _INSTANCES.get(mock)
    if instance is None:
        with _LOCK:
            instance = _INSTANCES.get(mock)
            if instance is None:
                instance = _INSTANCES[mock] = mock()
    return instance
