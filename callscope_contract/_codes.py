"""Error codes: plain strings every layer speaks (DESIGN §3.6).

An rpc error carries one as ``code``, a span as ``error_code``, a dashboard
and an alarm rule filter on it, so a failback policy, a trace and a chart use
the same words. :class:`rpc.RpcError` maps each to its exception class.
"""

from __future__ import annotations

__all__ = ["ERROR_CODES", "ErrorCode"]


class ErrorCode:
    """Stable error codes (plain strings, so they cross process and language lines)."""

    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    BUSY = "BUSY"
    NOT_FOUND = "NOT_FOUND"
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"  # a per-caller quota is used up
    CANCELLED = "CANCELLED"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    INTERNAL = "INTERNAL"
    CONFLICT = "CONFLICT"  # a registry compare-and-set lost the race
    NO_PROVIDER = "NO_PROVIDER"  # a forced routing rule left no provider


ERROR_CODES: frozenset[str] = frozenset(
    value for name, value in vars(ErrorCode).items() if name.isupper()
)
"""Every code above, for validation and for tests that every layer knows them."""
