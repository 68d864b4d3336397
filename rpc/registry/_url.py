"""Backends chosen by URL: ``memory://``, ``callscope://host:port``, ``zookeeper://host:port/root``.

Credentials ride in the URL's user part (``callscope://TOKEN@host:port``,
``zookeeper://user:password@host:port/root``) or as keyword options; query
parameters become options (``?heartbeat=0.5``). The embedded registry speaks TLS
with ``?tls=1`` (the system's trusted CAs) or ``?ca=/path/ca.pem`` (that CA only),
to a server started with ``callscope registry --tls-cert ... --tls-key ...``.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from callscope_contract import environment

from ._api import Registry

REGISTRY_URL_ENV = environment.CALLSCOPE_REGISTRY

_FLOATS = {
    "heartbeat",
    "timeout",
    "poll_wait",
    "session_timeout",
    "connect_timeout",
    "check_interval",
}
_named_memory: dict[str, Any] = {}
_lock = threading.Lock()


def client_tls(ca_file: str | None = None) -> ssl.SSLContext:
    """A client TLS context that checks the registry's certificate and host name against
    ``ca_file``, or the system's trusted CAs."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the registry CA file {ca_file!r}: {exc}") from None


def server_tls(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server TLS context from a certificate chain and its private key (PEM files)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load the TLS certificate {cert_file!r} / key {key_file!r}: "
                         f"{exc}") from None  # fmt: skip
    return context


def connect(url: str = "memory://", **options: Any) -> Registry:
    """A registry client for ``url``; the caller closes it."""
    parts = urlsplit(url)
    for name, value in parse_qsl(parts.query):
        options.setdefault(name, float(value) if name in _FLOATS else value)
    if parts.scheme == "memory":
        from ._memory import MemoryRegistry

        with _lock:  # one shared registry per name within this process
            if len(_named_memory) >= 1000 and parts.netloc not in _named_memory:
                raise ValueError("too many named memory registries")
            return _named_memory.setdefault(parts.netloc, MemoryRegistry())  # type: ignore[no-any-return]
    if not parts.hostname or not parts.port:
        raise ValueError(f"registry URL {url!r} needs host:port")
    if parts.scheme == "callscope":
        from ._embedded import EmbeddedRegistry

        if parts.username:
            options.setdefault("token", unquote(parts.username))
        tls, ca = options.pop("tls", ""), options.pop("ca", None)
        if ca or str(tls).lower() in ("1", "true", "yes"):
            options.setdefault("ssl", client_tls(ca))
        return EmbeddedRegistry(f"{parts.hostname}:{parts.port}", **options)
    if parts.scheme == "zookeeper":
        from ._zookeeper import ZooKeeperRegistry

        if parts.username:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            options.setdefault("credentials", creds)
        hosts = parts.netloc.rpartition("@")[2]
        return ZooKeeperRegistry(hosts, root=parts.path or "/callscope", **options)
    raise ValueError(f"unknown registry scheme {parts.scheme!r} in {url!r}")
