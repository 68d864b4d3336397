"""The one error tree of callscope, with stable string codes.

Every failure a caller can see is an :class:`RpcError` carrying a ``code``
shared by every layer (a failback policy, a span and a dashboard speak the
same words) and a ``retriable`` flag that cluster strategies read::

    RpcError
    ├── TimeoutError           TIMEOUT            retriable
    ├── UnavailableError       UNAVAILABLE        retriable
    ├── BusyError              BUSY               retriable
    ├── NotFoundError          NOT_FOUND
    ├── BadRequestError        BAD_REQUEST
    ├── UnauthenticatedError   UNAUTHENTICATED
    ├── PermissionDeniedError  PERMISSION_DENIED
    ├── ResourceExhaustedError RESOURCE_EXHAUSTED (a quota of the caller's is used up)
    ├── CancelledError         CANCELLED
    ├── ProtocolError          PROTOCOL_ERROR     (a malformed frame; closes that connection)
    └── InternalError          INTERNAL           (an unexpected exception in the provider)

Lower-level errors (``OSError``, ``asyncio.TimeoutError``...) are converted at the
transport boundary and never escape it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from callscope_contract import ErrorCode

__all__ = [
    "BadRequestError",
    "BusyError",
    "CancelledError",
    "ErrorCode",
    "InternalError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "ResourceExhaustedError",
    "RpcError",
    "TimeoutError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_for_code",
]


class RpcError(Exception):
    """A call failed. ``code`` says how; ``remote_type`` names the provider's exception."""

    code: str = ErrorCode.INTERNAL
    retriable: bool = False

    def __init__(
        self, message: str = "", *, remote_type: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        origin = f" [{self.remote_type}]" if self.remote_type else ""
        return f"{self.code}: {self.message}{origin}"

    def to_dict(self) -> dict[str, Any]:
        """The wire form of this error (a response frame's error body)."""
        return {"code": self.code, "message": self.message, "type": self.remote_type}

    @staticmethod
    def from_dict(data: Any) -> RpcError:
        """Rebuild an error from its wire form; unknown shapes become INTERNAL."""
        if not isinstance(data, dict):
            return InternalError(f"malformed error payload: {data!r:.200}")
        code = str(data.get("code", ErrorCode.INTERNAL))[:64]
        remote_type = data.get("type")
        remote_type = str(remote_type)[:256] if remote_type is not None else None
        message = str(data.get("message", ""))
        cls = _BY_CODE.get(code)
        if cls is None:
            return RpcError(message, remote_type=remote_type, code=code)
        return cls(message, remote_type=remote_type)


class TimeoutError(RpcError):
    code = ErrorCode.TIMEOUT
    retriable = True


class UnavailableError(RpcError):
    code = ErrorCode.UNAVAILABLE
    retriable = True


class BusyError(RpcError):
    code = ErrorCode.BUSY
    retriable = True


class NotFoundError(RpcError):
    code = ErrorCode.NOT_FOUND


class BadRequestError(RpcError):
    code = ErrorCode.BAD_REQUEST


class UnauthenticatedError(RpcError):
    code = ErrorCode.UNAUTHENTICATED


class PermissionDeniedError(RpcError):
    code = ErrorCode.PERMISSION_DENIED


class ResourceExhaustedError(RpcError):
    """A per-caller quota is used up (not retriable: retrying alone frees nothing)."""

    code = ErrorCode.RESOURCE_EXHAUSTED


class CancelledError(RpcError):
    code = ErrorCode.CANCELLED


class ProtocolError(RpcError):
    code = ErrorCode.PROTOCOL_ERROR
    # Whole frames decoded before the bad one (set by FrameDecoder.feed).
    frames: Sequence[tuple[int, int, int, int, bytes, bytes]] = ()


class InternalError(RpcError):
    code = ErrorCode.INTERNAL


_BY_CODE: dict[str, type[RpcError]] = {
    cls.code: cls
    for cls in (
        TimeoutError,
        UnavailableError,
        BusyError,
        NotFoundError,
        BadRequestError,
        UnauthenticatedError,
        PermissionDeniedError,
        ResourceExhaustedError,
        CancelledError,
        ProtocolError,
        InternalError,
    )
}


def error_for_code(code: str) -> type[RpcError]:
    """The error class for a wire code (plain :class:`RpcError` for a code it does not know)."""
    return _BY_CODE.get(code, RpcError)
