"""Rebuild typed values (dataclasses, lists of them...) from decoded plain data.

A method's type hints are the schema: the server converts arguments with them,
a typed client proxy converts results with them. Converters are built once per
type and cached, so the call path pays one dict lookup.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ._errors import BadRequestError

Converter = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


@lru_cache(maxsize=1024)
def converter_for(tp: Any) -> Converter:
    """A function turning plain decoded data into a ``tp`` (identity when none is needed)."""
    if tp is Any or tp is None or tp is type(None) or isinstance(tp, typing.TypeVar):
        return _identity
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_converter(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (list, tuple, set, frozenset) and args:
        item = converter_for(args[0])
        if origin is list:
            return _identity if item is _identity else lambda value: [item(v) for v in value]
        return lambda value: origin(item(v) for v in value)
    if origin is dict and len(args) == 2:
        val = converter_for(args[1])
        if val is _identity:
            return _identity
        return lambda value: {k: val(v) for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        members = [converter_for(a) for a in args if a is not type(None)]
        real = [m for m in members if m is not _identity]
        if len(members) == 1 and real:
            only = real[0]
            return lambda value: None if value is None else only(value)
        return _identity
    return _identity


def _dataclass_converter(cls: type) -> Converter:
    hints = typing.get_type_hints(cls)
    fields = [(f.name, converter_for(hints.get(f.name, Any))) for f in dataclasses.fields(cls)]

    def convert(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            got = type(value).__name__
            raise BadRequestError(f"expected a map for {cls.__qualname__}, got {got}")
        kwargs = {}
        for name, conv in fields:
            if name in value:
                kwargs[name] = conv(value[name])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise BadRequestError(f"cannot build {cls.__qualname__}: {exc}") from None

    return convert


def is_identity(conv: Converter) -> bool:
    return conv is _identity
