"""Backends by URL scheme: ``sqlite://``, ``elasticsearch://``, ``hbase://``, and plugins.

Built-ins are named here by module so a client library (elasticsearch, happybase) is
imported only when its backend is used; others register with :func:`register_backend`
or the ``callscope.storage`` entry-point group (an object with ``open_spans(url)`` and
``open_analytics(url)``). ``url.read_only`` asks a backend to read only: create nothing
(no file, table, index or template) and raise :class:`NoStore` when nothing is there.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._analytics import AnalyticsStore
from ._api import SpanStore
from ._errors import BadQuery

__all__ = [
    "DEFAULT_URL",
    "StoreUrl",
    "open_analytics_store",
    "open_span_store",
    "parse_url",
    "register_backend",
]

DEFAULT_URL = "sqlite://callscope.db"

_BUILTIN = {
    "sqlite": "storage.sqlite",
    "elasticsearch": "storage.elastic",
    "hbase": "storage.hbase",
}


_replaced: set[str] = set()  # built-in schemes a caller registered another backend for


def _backends() -> Any:
    """The ``storage`` kind of rpc's one extension registry, imported on first use: a
    built-in backend opens without it, so storage stays light (DESIGN §3.8)."""
    from rpc import extension_point

    point = extension_point("storage")
    for scheme, module in _BUILTIN.items():
        point.register_lazy(scheme, module)
    return point


class StoreUrl:
    """A parsed store URL: ``scheme://location?option=value&...``."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only  # open to read: create nothing, NoStore when absent
        parts = urlsplit(url)
        if not parts.scheme:
            raise BadQuery(
                f"a store URL looks like sqlite://path or hbase://host:port, not {url!r}"
            )
        self.scheme = parts.scheme
        self.location = url.split("://", 1)[1].split("?", 1)[0] if "://" in url else parts.path
        self.options = {k: v[-1] for k, v in parse_qs(parts.query).items()}

    def option(self, name: str, default: str) -> str:
        return self.options.get(name, default)

    def int_option(self, name: str, default: int) -> int:
        try:
            return int(self.options.get(name, default))
        except ValueError:
            raise BadQuery(f"store URL option {name} must be an integer") from None

    def host_port(self, default_port: int) -> tuple[str, int]:
        host, _, port = self.location.partition(":")
        try:
            return host or "127.0.0.1", int(port) if port else default_port
        except ValueError:
            raise BadQuery(f"bad port in store URL {self.url!r}") from None


def parse_url(url: str, *, read_only: bool = False) -> StoreUrl:
    return StoreUrl(url, read_only=read_only)


def register_backend(scheme: str, backend: Any) -> None:
    """Serve ``scheme://`` URLs with ``backend.open_spans`` and ``backend.open_analytics``."""
    _backends().register(scheme, backend, replace=True)
    _replaced.add(scheme)


def _backend(scheme: str) -> Any:
    if scheme in _BUILTIN and scheme not in _replaced:
        return importlib.import_module(_BUILTIN[scheme])
    from rpc import ExtensionError

    try:
        return _backends().get(scheme)
    except ExtensionError as exc:  # this package's errors are StorageErrors (one boundary)
        raise BadQuery(f"no storage backend for {scheme}://: {exc.message}") from None


def open_span_store(url: str = DEFAULT_URL, *, read_only: bool = False) -> SpanStore:
    """The span store a URL names, ready to use (tables, indices, templates created).

    ``read_only``: open what exists and create nothing; :class:`NoStore` when there is
    no store at ``url`` (what read commands want: a typo is not an empty store)."""
    parsed = parse_url(url, read_only=read_only)
    return _backend(parsed.scheme).open_spans(parsed)


def open_analytics_store(url: str = DEFAULT_URL, *, read_only: bool = False) -> AnalyticsStore:
    """The analytics store a URL names (the same URL as the span store is fine);
    ``read_only`` as for :func:`open_span_store`."""
    parsed = parse_url(url, read_only=read_only)
    return AnalyticsStore(_backend(parsed.scheme).open_analytics(parsed))
