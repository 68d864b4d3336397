"""Layered configuration: consumer-local > provider > global, method over service.

Each level holds layers per service (``"*"``: every service) from its sources --
code, a file, the registry -- and a layer may carry ``"methods": {name: {...}}``.
The effective settings of (service, method) apply, from weakest to strongest:

    defaults → global → consumer "*" → provider service → consumer service
             → provider method → consumer method

(granularity first, then level, as Dubbo orders them), and within a level the
registry's layer, then a file's, then code's. Results are cached until a layer
changes; listeners hear of every change (the client drops its strategies).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import BadRequestError
from ._settings import Settings

__all__ = ["LEVELS", "SOURCES", "LayeredConfig"]

LEVELS = ("global", "provider", "consumer")  # weakest first
SOURCES = ("registry", "file", "code")  # weakest first, within one level
ANY = "*"


class LayeredConfig:
    """Every layer one consumer knows, and the effective :class:`Settings` they make."""

    def __init__(self, defaults: Settings | None = None) -> None:
        self.defaults = defaults or Settings()
        self._layers: dict[tuple[str, str, str], dict[str, Any]] = {}  # (level, source, service)
        self._cache: dict[tuple[str, str], Settings] = {}
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.version = 0

    def put(
        self,
        level: str,
        service: str,
        layer: Mapping[str, Any] | None,
        *,
        source: str = "code",
    ) -> None:
        """Set (or with ``None`` remove) one layer; validated before anything changes."""
        if level not in LEVELS:
            raise BadRequestError(f"unknown level {level!r}; known: {', '.join(LEVELS)}")
        if source not in SOURCES:
            raise BadRequestError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
        if level == "global" and service != ANY:
            raise BadRequestError("the global level holds settings for every service ('*')")
        key = (level, source, service)
        with self._lock:
            if layer is None:
                self._layers.pop(key, None)
            else:
                self._layers[key] = validate_layer(layer)
            self._cache.clear()
            self.version += 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def layer(self, level: str, service: str, source: str = "code") -> dict[str, Any] | None:
        """One layer as stored (``None`` if unset)."""
        return self._layers.get((level, source, service))

    def scopes(self) -> list[tuple[str, str]]:
        """Every (service, method) some layer names (method ``""``: the service itself)."""
        with self._lock:
            found = {(service, "") for (_, _, service) in self._layers}
            for (_, _, service), layer in self._layers.items():
                found.update((service, method) for method in layer.get("methods") or {})
        return sorted(found)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def effective(self, service: str, method: str = "") -> Settings:
        """The settings a call of ``service.method`` runs with."""
        key = (service, method)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        settings = self.defaults
        with self._lock:
            for _, _, values in self._steps(service, method):
                settings = settings.merged(values)
            self._cache[key] = settings
        return settings

    def explain(self, service: str, method: str = "") -> list[dict[str, Any]]:
        """Where each value comes from, strongest last (``callscope config effective``)."""
        with self._lock:
            return [
                {"from": origin, "scope": scope, "settings": dict(values)}
                for origin, scope, values in self._steps(service, method)
            ]

    def _steps(self, service: str, method: str) -> list[tuple[str, str, Mapping[str, Any]]]:
        order: list[tuple[str, str, str | None]] = [
            ("global", ANY, None),
            ("consumer", ANY, None),
            ("provider", service, None),
            ("consumer", service, None),
        ]
        if method:
            order += [("provider", service, method), ("consumer", service, method)]
        steps = []
        for level, svc, meth in order:
            for source in SOURCES:
                layer = self._layers.get((level, source, svc))
                if layer is None:
                    continue
                values = _method_part(layer, meth) if meth else _service_part(layer)
                if values:
                    scope = svc if meth is None else f"{svc}/{meth}"
                    steps.append((f"{level}:{source}", scope, values))
        return steps


def _service_part(layer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in layer.items() if k != "methods"}


def _method_part(layer: Mapping[str, Any], method: str) -> Mapping[str, Any]:
    methods = layer.get("methods") or {}
    return methods.get(method) or {}


def validate_layer(layer: Mapping[str, Any]) -> dict[str, Any]:
    """A layer as stored: its service part and each method's part valid :class:`Settings` keys."""
    if not isinstance(layer, Mapping):
        raise BadRequestError(f"a settings layer is a map, not {type(layer).__name__}")
    Settings().merged(_service_part(layer))
    methods = layer.get("methods", {})
    if not isinstance(methods, Mapping):
        raise BadRequestError("'methods' maps method names to settings")
    for name, part in methods.items():
        if not isinstance(name, str) or not name:
            raise BadRequestError(f"bad method name {name!r} under 'methods'")
        try:
            Settings().merged(part)
        except BadRequestError as exc:
            raise BadRequestError(f"methods.{name}: {exc.message}") from None
    if not methods:
        return dict(layer)
    return {**layer, "methods": {k: dict(v) for k, v in methods.items()}}
