"""callscope RPC: protocol, transport, server, client, call models, interceptors.

The public surface is exactly ``__all__``; every module behind it is private.
"""

from ._balance import Balancer, get_balancer, register_balancer
from ._channel import Backoff
from ._client import AsyncClient, Call, CallOptions, Outcome
from ._codec import Codec, JsonCodec, MsgpackCodec, get_codec, register_codec
from ._connection import Heartbeat
from ._defaults import add_global_interceptor, remove_global_interceptor
from ._directory import Directory, Provider, StaticDirectory, parse_address
from ._errors import (
    BadRequestError,
    BusyError,
    CancelledError,
    ErrorCode,
    InternalError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    ResourceExhaustedError,
    RpcError,
    TimeoutError,
    UnauthenticatedError,
    UnavailableError,
    error_for_code,
)
from ._extensions import (
    ExtensionError,
    ExtensionPoint,
    extension,
    extension_kinds,
    extension_point,
)
from ._frame import Limits
from ._invocation import CallNext, Interceptor, Invocation
from ._loop import new_event_loop, run
from ._server import Server
from ._service import ServiceSpec, service
from ._sync import Client
from .config import idempotent

__all__ = [
    "AsyncClient",
    "Backoff",
    "BadRequestError",
    "Balancer",
    "BusyError",
    "Call",
    "CallNext",
    "CallOptions",
    "CancelledError",
    "Client",
    "Codec",
    "Directory",
    "ErrorCode",
    "ExtensionError",
    "ExtensionPoint",
    "Heartbeat",
    "Interceptor",
    "InternalError",
    "Invocation",
    "JsonCodec",
    "Limits",
    "MsgpackCodec",
    "NotFoundError",
    "Outcome",
    "PermissionDeniedError",
    "ProtocolError",
    "Provider",
    "ResourceExhaustedError",
    "RpcError",
    "Server",
    "ServiceSpec",
    "StaticDirectory",
    "TimeoutError",
    "UnauthenticatedError",
    "UnavailableError",
    "add_global_interceptor",
    "error_for_code",
    "extension",
    "extension_kinds",
    "extension_point",
    "get_balancer",
    "get_codec",
    "idempotent",
    "new_event_loop",
    "parse_address",
    "register_balancer",
    "register_codec",
    "remove_global_interceptor",
    "run",
    "service",
]
