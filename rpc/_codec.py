"""Codecs turn header maps and bodies into bytes and back — never with pickle.

Built-ins are ``msgpack`` (id 1, the default) and ``json`` (id 2). Others are
registered by name and id with :func:`register_codec`, or found through the
``callscope.codecs`` entry-point group. Dataclasses are encoded as maps; the
receiving side rebuilds them from type hints (see ``_convert``), so no type
information from the wire is ever trusted to construct objects.

A codec may also offer ``decode_limited(data, max_depth, max_elements, abandoned)``
(``abandoned()`` true: the caller gave up, stop early) and ``openers`` (the
bytes that may open a container, so small values skip the depth walk), which
refuses (``BadRequestError``) a value nested too deep or holding too many
elements *before* building it (see ``_bounded``); the built-ins do. For a codec
without it, the server decodes first and checks the shape afterwards.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol, runtime_checkable

import msgpack

from ._bounded import (
    JSON_OPENERS,
    MSGPACK_OPENERS,
    Abandoned,
    json_decode,
    msgpack_decode,
)
from ._errors import BadRequestError
from ._extensions import ExtensionError, extension_point

__all__ = ["Codec", "JsonCodec", "MsgpackCodec", "get_codec", "register_codec"]


@runtime_checkable
class Codec(Protocol):
    """What a codec must offer. ``id`` travels in every frame header (1..255)."""

    name: str
    id: int

    def encode(self, obj: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


def _never() -> bool:
    return False


def _plain(obj: Any) -> Any:
    """Fallback for values the serialiser does not know: dataclasses become maps."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__qualname__}")


class MsgpackCodec:
    """Compact and fast; the default."""

    name = "msgpack"
    id = 1
    openers = MSGPACK_OPENERS

    def __init__(self) -> None:
        self._packer = msgpack.Packer(default=_plain, use_bin_type=True, autoreset=True)

    def encode(self, obj: Any) -> bytes:
        try:
            return self._packer.pack(obj)
        except (TypeError, ValueError, OverflowError) as exc:
            self._packer.reset()
            raise BadRequestError(f"msgpack cannot encode value: {exc}") from None

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)

    def decode_limited(
        self, data: bytes, max_depth: int, max_elements: int, abandoned: Abandoned | None = None
    ) -> Any:
        return msgpack_decode(data, max_depth, max_elements, abandoned or _never)


class JsonCodec:
    """Readable and interoperable; bytes are not representable."""

    name = "json"
    id = 2
    openers = JSON_OPENERS

    def encode(self, obj: Any) -> bytes:
        try:
            return json.dumps(obj, default=_plain, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise BadRequestError(f"json cannot encode value: {exc}") from None

    def decode(self, data: bytes) -> Any:
        return json.loads(data)

    def decode_limited(
        self, data: bytes, max_depth: int, max_elements: int, abandoned: Abandoned | None = None
    ) -> Any:
        return json_decode(data, max_depth, max_elements, abandoned or _never)


CODECS = extension_point("codecs")
_BY_ID: dict[int, Codec] = {}  # the wire's index: a frame names its codec by id


def register_codec(codec: Codec, *, replace: bool = False) -> Codec:
    """Make ``codec`` available by name and id; refuses to shadow one silently."""
    if not isinstance(codec.id, int) or not 1 <= codec.id <= 255:
        raise ExtensionError(f"codec id must be in 1..255, got {codec.id!r}")
    if not replace:
        for existing in (CODECS.loaded().get(codec.name), _BY_ID.get(codec.id)):
            if existing is not None and existing is not codec:
                raise ExtensionError(
                    f"codec {codec.name!r} (id {codec.id}) clashes with "
                    f"{existing.name!r} (id {existing.id}); pass replace=True to override"
                )
    CODECS.register(codec.name, codec, replace=True)
    _BY_ID[codec.id] = codec
    return codec


def _instance(name: str) -> Codec:
    """An entry point may name a codec class or an instance; either way one instance serves."""
    found = CODECS.get(name)
    if isinstance(found, type):
        found = register_codec(found(), replace=True)
    elif _BY_ID.get(found.id) is not found:
        register_codec(found)
    return found


def get_codec(key: str | int) -> Codec:
    """The codec registered under a name or an id; raises :class:`ExtensionError` if none is."""
    if isinstance(key, int):
        codec = _BY_ID.get(key)
        if codec is None:
            for name in CODECS.names():  # ids are known only once loaded
                _instance(name)
            codec = _BY_ID.get(key)
        if codec is None:
            raise ExtensionError(f"no codec with id {key}; known: {', '.join(CODECS.names())}")
        return codec
    return _instance(key)


register_codec(MsgpackCodec())
register_codec(JsonCodec())
