"""Where providers come from: the ``Directory`` interface and a static list.

The registry (``rpc.registry``) implements the same interface with push
updates; the client only ever asks a directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Directory", "Provider", "StaticDirectory", "parse_address"]

Listener = Callable[[Sequence["Provider"]], None]


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider instance as a consumer sees it.

    ``weight`` is the provider's own (its metadata, 100 by default); ``start_time``
    (Unix seconds, 0 when unknown) lets a balancer warm a fresh instance up.
    """

    address: str
    weight: int = 100
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    start_time: float = field(default=0.0, compare=False)


@runtime_checkable
class Directory(Protocol):
    """The providers of a service, and notification when they change."""

    def providers(self, service: str, version: str = "", group: str = "") -> Sequence[Provider]: ...

    def subscribe(self, service: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with the new list on every change; returns an unsubscribe."""
        ...


def parse_address(address: str) -> tuple[str, int]:
    """``"host:port"`` (or ``"[v6]:port"``) into its parts, with a clear error."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad provider address {address!r}: expected host:port")
    return host.strip("[]"), int(port)


class StaticDirectory:
    """A fixed list of addresses, for every service or per service name."""

    def __init__(self, addresses: Iterable[str] | Mapping[str, Iterable[str]]) -> None:
        if isinstance(addresses, Mapping):
            self._per_service = {name: self._build(addrs) for name, addrs in addresses.items()}
            self._all: tuple[Provider, ...] = ()
        else:
            self._per_service = {}
            self._all = self._build(addresses)

    @staticmethod
    def _build(addresses: Iterable[str]) -> tuple[Provider, ...]:
        out = []
        for address in addresses:
            parse_address(address)
            out.append(Provider(address))
        return tuple(out)

    def providers(self, service: str, version: str = "", group: str = "") -> Sequence[Provider]:
        return self._per_service.get(service, self._all)

    def subscribe(self, service: str, listener: Listener) -> Callable[[], None]:
        return lambda: None
