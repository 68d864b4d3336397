"""Declaring services (``@service``) and the method tables the server dispatches to."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ._convert import Converter, converter_for, is_identity
from ._errors import BadRequestError

__all__ = ["ServiceSpec", "service"]

C = TypeVar("C", bound=type)

_SPEC_ATTR = "__callscope_service__"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service's identity: consumers address it by name, version and group."""

    name: str
    version: str = ""
    group: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.group)


def service(name: str, *, version: str = "", group: str = "") -> Callable[[C], C]:
    """Mark a class as an RPC service; its public methods (sync or async) become callable."""
    if not name or not isinstance(name, str):
        raise ValueError("a service needs a non-empty name")

    def mark(cls: C) -> C:
        setattr(cls, _SPEC_ATTR, ServiceSpec(name, version, group))
        return cls

    return mark


def spec_of(obj: Any) -> ServiceSpec | None:
    return getattr(obj, _SPEC_ATTR, None)


class Method:
    """One exported method, with what dispatch needs precomputed."""

    __slots__ = ("converters", "fn", "is_async", "max_args", "min_args", "name", "signature")

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        self.name = name
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        positional = [
            p
            for p in self.signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        varargs = any(p.kind is p.VAR_POSITIONAL for p in self.signature.parameters.values())
        self.min_args = sum(1 for p in positional if p.default is p.empty)
        self.max_args = 1 << 30 if varargs else len(positional)
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable annotations: pass values through untouched
            hints = {}
        convs: list[Converter] = [converter_for(hints.get(p.name, Any)) for p in positional]
        self.converters: list[Converter] | None = (
            None if all(is_identity(c) for c in convs) else convs
        )

    def bind(self, args: Sequence[Any], kwargs: dict[str, Any] | None) -> Sequence[Any]:
        """Check arity and rebuild typed arguments; raises BAD_REQUEST on a mismatch."""
        if kwargs or not self.min_args <= len(args) <= self.max_args:
            try:
                self.signature.bind(*args, **(kwargs or {}))
            except TypeError as exc:
                raise BadRequestError(f"{self.name}: {exc}") from None
        if self.converters is not None:
            try:
                args = [conv(a) for conv, a in zip(self.converters, args, strict=False)] + list(
                    args[len(self.converters) :]
                )
            except BadRequestError:
                raise
            except (TypeError, ValueError, AttributeError) as exc:
                raise BadRequestError(f"{self.name}: bad argument: {exc}") from None
        return args


class ExportedService:
    """An object exported under a :class:`ServiceSpec`, with its method table."""

    def __init__(self, instance: Any, spec: ServiceSpec) -> None:
        self.instance = instance
        self.spec = spec
        self.methods: dict[str, Method] = {}
        for name, _ in inspect.getmembers(type(instance), callable):
            if name.startswith("_"):
                continue
            bound = getattr(instance, name)
            if inspect.ismethod(bound) or inspect.isfunction(bound):
                self.methods[name] = Method(name, bound)
        if not self.methods:
            raise ValueError(f"service {spec.name!r} has no public methods to export")
