"""Admission gates: checks a provider runs on a request's header before decoding its body.

The provider's path is connection control → admission (gates) → server chain →
handler (docs/architecture.md, "Flow control"). A gate refuses by raising an
:class:`~rpc.RpcError` whose code the caller then sees (``BUSY``,
``RESOURCE_EXHAUSTED``...); a gate that fails in any other way refuses the call
as ``INTERNAL`` and is logged: a broken gate never breaks the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from .._errors import InternalError, RpcError

__all__ = ["Gate", "admit_all", "gate_failed"]

log = logging.getLogger("callscope.rpc")


class Gate(Protocol):
    """One admission check on the provider, judged from the request header before the body is decoded."""  # noqa: E501

    # raise an RpcError (BusyError, ResourceExhaustedError...) to refuse
    def admit(self, service: str, method: str, principal: Any, /) -> None: ...


def admit_all(gates: Sequence[Gate], service: str, method: str, principal: Any) -> None:
    """Run ``gates`` in order; the first refusal wins (an RpcError, or INTERNAL if one broke)."""
    for gate in gates:
        try:
            gate.admit(service, method, principal)
        except RpcError:
            raise
        except Exception as exc:
            raise gate_failed(gate, exc) from None


def gate_failed(gate: object, exc: BaseException) -> InternalError:
    """The refusal for a gate that raised something other than an RpcError (logged)."""
    log.error("callscope: admission gate %r raised; refusing the call", gate, exc_info=exc)
    return InternalError(f"admission gate {type(gate).__name__} failed: {type(exc).__name__}")
