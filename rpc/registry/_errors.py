"""The registry's one error of its own: a compare-and-set lost the race.

Every other registry failure reuses the RPC codes (``UNAVAILABLE``, ``NOT_FOUND``,
``BAD_REQUEST``, ``UNAUTHENTICATED``, ``PERMISSION_DENIED``).
"""

from __future__ import annotations

from callscope_contract import ErrorCode

from .._errors import RpcError

CONFLICT = ErrorCode.CONFLICT


class ConflictError(RpcError):
    """``put``/``delete`` with an expected version that is no longer current."""

    code = CONFLICT


def lift(err: RpcError) -> RpcError:
    """A wire error with code ``CONFLICT`` as the :class:`ConflictError` it was."""
    if err.code == CONFLICT and not isinstance(err, ConflictError):
        return ConflictError(err.message, remote_type=err.remote_type)
    return err
