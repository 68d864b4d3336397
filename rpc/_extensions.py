"""One registry for every kind of strategy, found by name (DESIGN §3.5, §3.7).

A *kind* is one extension point: codecs, clusters, balancers, routers, samplers,
exporters, store backends, and the flow-control kinds to come. Each kind has one
Python entry-point group, ``callscope.<kind>``, and the same three ways in::

    @rpc.extension("balancers", "least_active")     # a decorator
    class LeastActive: ...

    rpc.extension_point("balancers").register("mine", Mine)   # a call

    [project.entry-points."callscope.balancers"]              # a package's metadata
    mine = "my_pkg.balance:Mine"

Built-ins may be named by a dotted path (``"pkg.module:attr"``) and are imported
only when first asked for; entry points are read once per kind, on the first
name the registry does not know. What a registered object *is* (a class, a
factory, an instance, a module) is the kind's business: the registry only finds
it. Every failure is an :class:`ExtensionError` (code ``BAD_REQUEST``): the name
is wrong in the caller's configuration, and the message lists the known names.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar, overload

from ._errors import BadRequestError

__all__ = ["ExtensionError", "ExtensionPoint", "extension", "extension_kinds", "extension_point"]

T = TypeVar("T")
GROUP_PREFIX = "callscope."
_MISSING = object()


class ExtensionError(BadRequestError, LookupError):
    """No extension of that kind by that name, or one that cannot be loaded or registered."""


class ExtensionPoint:
    """The extensions of one kind by name: registered, built in by dotted path, or entry points."""

    def __init__(self, kind: str) -> None:
        if not kind or not kind.replace("_", "").isalnum():
            raise ExtensionError(f"an extension kind is a plain word, not {kind!r}")
        self.kind = kind
        self.noun = kind[:-1] if kind.endswith("s") else kind  # "no balancer named ..."
        self.group = GROUP_PREFIX + kind
        self._loaded: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}
        self._entry_points: dict[str, EntryPoint] | None = None
        self._lock = threading.RLock()

    # -- registering --------------------------------------------------------
    @overload
    def register(self, name: str, obj: None = None, *, replace: bool = ...) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T, *, replace: bool = ...) -> T: ...
    def register(self, name: str, obj: Any = None, *, replace: bool = False) -> Any:
        """Register ``obj`` as ``name``; without ``obj``, a decorator that does.

        Refuses to shadow a different object under the same name unless ``replace``.
        """
        if obj is None:
            return lambda target: self.register(name, target, replace=replace)
        self._check_name(name)
        with self._lock:
            current = self._loaded.get(name, _MISSING)
            if not replace and current is not _MISSING and current is not obj:
                raise ExtensionError(
                    f"{self.noun} {name!r} is already registered ({_describe(current)}); "
                    "pass replace=True to override it"
                )
            self._loaded[name] = obj
            self._lazy.pop(name, None)
        return obj

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``"package.module:attribute"`` (or a module path), imported on first use."""
        self._check_name(name)
        with self._lock:
            if name not in self._loaded:
                self._lazy[name] = target

    def unregister(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)
            self._lazy.pop(name, None)

    # -- finding ------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The object registered as ``name``, loading it (and entry points) on first use."""
        found = self._loaded.get(name, _MISSING)
        if found is not _MISSING:
            return found
        with self._lock:
            found = self._loaded.get(name, _MISSING)
            if found is not _MISSING:
                return found
            if name in self._lazy:
                return self._load(name, self._lazy[name], lambda: _import(self._lazy[name]))
            ep = self._eps().get(name)
            if ep is not None:
                return self._load(name, ep.value, ep.load)
        raise ExtensionError(f"no {self.noun} named {name!r}; known: {', '.join(self.names())}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def names(self) -> list[str]:
        """Every known name, loaded or not (entry points are listed, not imported)."""
        with self._lock:
            return sorted({*self._loaded, *self._lazy, *self._eps()})

    def loaded(self) -> dict[str, Any]:
        """What is loaded now, without importing anything."""
        with self._lock:
            return dict(self._loaded)

    # -- internals ----------------------------------------------------------
    def _eps(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            self._entry_points = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._entry_points

    def _load(self, name: str, where: str, load: Callable[[], Any]) -> Any:
        try:
            obj = load()
        except Exception as exc:
            raise ExtensionError(
                f"{self.noun} {name!r} ({where}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        self._loaded[name] = obj
        self._lazy.pop(name, None)
        return obj

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise ExtensionError(f"a {self.noun} name is a non-empty string, not {name!r}")

    def __repr__(self) -> str:
        return f"<ExtensionPoint {self.group}: {', '.join(self.names())}>"


def _import(target: str) -> Any:
    module, _, attribute = target.partition(":")
    loaded = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        loaded = getattr(loaded, part)
    return loaded


def _describe(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__


_POINTS: dict[str, ExtensionPoint] = {}
_POINTS_LOCK = threading.Lock()


def extension_point(kind: str) -> ExtensionPoint:
    """The registry of one kind (created on first use; entry-point group ``callscope.<kind>``)."""
    point = _POINTS.get(kind)
    if point is None:
        with _POINTS_LOCK:
            point = _POINTS.get(kind)
            if point is None:
                point = _POINTS[kind] = ExtensionPoint(kind)
    return point


def extension(kind: str, name: str, *, replace: bool = False) -> Callable[[T], T]:
    """Decorator: register the decorated class or function as the ``kind`` named ``name``."""
    return extension_point(kind).register(name, replace=replace)


def extension_kinds() -> Iterable[str]:
    """The kinds in use in this process."""
    return sorted(_POINTS)
