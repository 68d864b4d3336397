"""Decoding untrusted bytes within a nesting depth and an element count.

A codec turns a few bytes into many objects: 16 MiB of msgpack empty arrays is
16 million Python lists (about 1 GB). So a body is checked *before* it is built
whenever its size does not already prove it small: one value takes at least one
byte, so a body of ``n`` bytes holds at most ``n`` elements, and its depth is at
most the number of bytes that could open a container.

* small bodies are decoded at once, then walked only if they could be too deep;
* larger ones are first scanned without building anything, and refused at the
  first element or level too many. One that passes with few elements is decoded
  at once; one with many is decoded in slices (msgpack) or by the pure-Python
  JSON scanner, with the cyclic GC paused, so no single step holds the
  interpreter for long. The server runs these off its event loop (``_intake``).

Elements are every array item, map key and map value; depth counts containers,
the outermost being 1. Violations raise :class:`BadRequestError`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import json.scanner
import re
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from ._errors import BadRequestError

__all__ = [
    "JSON_OPENERS",
    "MSGPACK_OPENERS",
    "check_shape",
    "could_nest",
    "json_decode",
    "msgpack_decode",
    "scan_json",
    "scan_msgpack",
]

# Bodies up to this size are decoded by one call of the C decoder (at most 64 Ki
# elements: tens of ms at worst on a loaded 2-core machine); larger msgpack bodies are
# fed to it in slices of SLICE bytes, larger JSON ones to the pure-Python scanner.
DIRECT = 64 * 1024
SLICE = 16 * 1024

Abandoned = Callable[[], bool]


def _never() -> bool:
    return False


def too_deep(max_depth: int) -> BadRequestError:
    return BadRequestError(f"nesting deeper than {max_depth} levels")


def too_many(max_elements: int) -> BadRequestError:
    return BadRequestError(f"more than {max_elements} elements")


def could_nest(data: bytes, openers: bytes, max_depth: int) -> bool:
    """Whether ``data`` holds ``max_depth`` bytes that could open a container (else its
    depth is surely within the limit); ``openers``: those bytes."""
    size = len(data)
    return size >= max_depth and size - len(data.translate(None, openers)) >= max_depth


def check_shape(obj: Any, max_depth: int, max_elements: int) -> None:
    """Walk decoded lists and maps level by level; raise if too deep or too many."""
    level = [obj] if obj.__class__ is list or obj.__class__ is dict else []
    depth = elements = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise too_deep(max_depth)
        below: list[Any] = []
        values: Any
        for container in level:
            if container.__class__ is dict:
                elements += 2 * len(container)
                values = container.values()
            else:
                elements += len(container)
                values = container
            below += [v for v in values if v.__class__ is list or v.__class__ is dict]
        if elements > max_elements:
            raise too_many(max_elements)
        level = below


# -- msgpack ------------------------------------------------------------------------
# What follows a type byte: (kind, n). kind 0: n more bytes; 1: a length in n bytes,
# then that many (plus 1 for ext types: see _EXT); 2: an array of n items, 3: a map of
# n entries; 4: an array whose count is in n bytes; 5: a map likewise; 6: invalid.
def _table() -> tuple[tuple[int, int], ...]:
    t: list[tuple[int, int]] = [(0, 0)] * 256  # fixints, nil, false, true
    for b in range(0x80, 0x90):
        t[b] = (3, b & 0x0F)
    for b in range(0x90, 0xA0):
        t[b] = (2, b & 0x0F)
    for b in range(0xA0, 0xC0):
        t[b] = (0, b & 0x1F)
    t[0xC1] = (6, 0)
    for b, n in zip(range(0xC4, 0xCA), (1, 2, 4, 1, 2, 4), strict=True):  # bin8..ext32
        t[b] = (1, n)
    for b, n in zip(range(0xCA, 0xD4), (4, 8, 1, 2, 4, 8, 1, 2, 4, 8), strict=True):
        t[b] = (0, n)  # float32, float64, uint8..uint64, int8..int64
    for b, n in zip(range(0xD4, 0xD9), (2, 3, 5, 9, 17), strict=True):  # fixext (+ type)
        t[b] = (0, n)
    t[0xD9], t[0xDA], t[0xDB] = (1, 1), (1, 2), (1, 4)  # str8..str32
    t[0xDC], t[0xDD] = (4, 2), (4, 4)
    t[0xDE], t[0xDF] = (5, 2), (5, 4)
    return tuple(t)


_MSGPACK = _table()
_EXT = frozenset({0xC7, 0xC8, 0xC9})
# Bytes that may open a msgpack container; depth can not exceed how many a body holds.
MSGPACK_OPENERS = bytes(b for b in range(256) if _MSGPACK[b][0] in (2, 3, 4, 5))


def scan_msgpack(
    data: bytes, max_depth: int, max_elements: int, abandoned: Abandoned = _never
) -> int:
    """Walk one msgpack value's structure without building it; raise at the first
    level or element past the limits, else return how many elements it holds.
    Truncation and junk are left to the decoder."""
    table = _MSGPACK
    end = len(data)
    pos = 0
    left = 1  # values still to read in the innermost open container (the root: one)
    stack: list[int] = []  # the same count for each enclosing container
    elements = -1  # the root is not an element
    while True:
        if not left:
            if not stack:
                return elements
            left = stack.pop()
            continue
        if pos >= end:
            return elements  # truncated: the decoder says so
        left -= 1
        elements += 1
        if elements > max_elements:
            raise too_many(max_elements)
        if not elements & 0xFFFF and abandoned():
            raise BadRequestError("abandoned")
        b = data[pos]
        kind, n = table[b]
        pos += 1
        if kind == 0:
            pos += n
            continue
        if kind == 1:
            size = int.from_bytes(data[pos : pos + n], "big")
            pos += n + size + (b in _EXT)
            continue
        if kind == 6:
            return elements  # 0xc1: the decoder refuses it
        if kind >= 4:
            count = int.from_bytes(data[pos : pos + n], "big")
            pos += n
            kind -= 2
        else:
            count = n
        if len(stack) >= max_depth:
            raise too_deep(max_depth)
        if kind == 3:
            count *= 2
        if count:
            if count > max_elements:
                raise too_many(max_elements)
            stack.append(left)
            left = count


def _msgpack_unpacker(size: int, max_elements: int) -> msgpack.Unpacker:
    cap = max(max_elements, 1)
    return msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        use_list=True,
        max_buffer_size=max(size, 1),
        max_array_len=cap,
        max_map_len=cap,
        max_str_len=max(size, 1),
        max_bin_len=max(size, 1),
        max_ext_len=max(size, 1),
    )


def msgpack_decode(
    data: bytes, max_depth: int, max_elements: int, abandoned: Abandoned = _never
) -> Any:
    """One msgpack value from ``data``, refused past the limits (see the module)."""
    size = len(data)
    if size <= max_elements and size <= DIRECT:
        value = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
        if could_nest(data, MSGPACK_OPENERS, max_depth):
            check_shape(value, max_depth, max_elements)
        return value
    if scan_msgpack(data, max_depth, max_elements, abandoned) <= DIRECT:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    with gc_paused():
        return _sliced(data, max_elements, abandoned)


def _sliced(data: bytes, max_elements: int, abandoned: Abandoned) -> Any:
    """Feed the C decoder SLICE bytes at a time (it resumes where it stopped), so the
    interpreter can switch threads between slices."""
    size = len(data)
    unpacker = _msgpack_unpacker(size, max_elements)
    view = memoryview(data)
    for start in range(0, size, SLICE):
        if abandoned():
            raise BadRequestError("abandoned")
        unpacker.feed(view[start : start + SLICE])
        try:
            value = unpacker.unpack()
        except msgpack.OutOfData:
            continue
        if start + SLICE < size or unpacker.tell() != size:
            raise ValueError("extra data after the value")
        return value
    raise ValueError("truncated value")


# -- JSON ---------------------------------------------------------------------------
JSON_OPENERS = b"[{"
# A bracket, a string's opening quote, or a run of number or literal characters.
_JSON_TOKEN = re.compile(rb'[\[\]{}"]|[^\s\[\]{},:"]+')
_OPEN = frozenset(b"[{")
_CLOSE = frozenset(b"]}")
_QUOTE = 0x22
_BACKSLASH = 0x5C


def scan_json(data: bytes, max_depth: int, max_elements: int, abandoned: Abandoned = _never) -> int:
    """Count a JSON text's elements (object keys included) and check its depth without
    building anything; returns the count. Syntax errors are left to the decoder."""
    search = _JSON_TOKEN.search
    find = data.find
    pos = depth = 0
    elements = -1  # the root is not an element
    while (match := search(data, pos)) is not None:
        c = data[match.start()]
        pos = match.end()
        if c in _CLOSE:
            depth -= 1
            continue
        elements += 1
        if elements > max_elements:
            raise too_many(max_elements)
        if not elements & 0xFFFF and abandoned():
            raise BadRequestError("abandoned")
        if c in _OPEN:
            depth += 1
            if depth > max_depth:
                raise too_deep(max_depth)
        elif c == _QUOTE:  # skip the string: to the first quote not escaped
            while (end := find(b'"', pos)) >= 0:
                first = end
                while data[first - 1] == _BACKSLASH:
                    first -= 1
                pos = end + 1
                if not (end - first) & 1:
                    break
            else:
                return elements  # unterminated: the decoder says so
    return elements


class _PyDecoder(json.JSONDecoder):
    """The stdlib's pure-Python scanner: slower than the C one, but it runs bytecode,
    so a decoding thread hands the interpreter back to the event loop every few ms."""

    def __init__(self) -> None:
        super().__init__()
        self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]


def json_decode(
    data: bytes, max_depth: int, max_elements: int, abandoned: Abandoned = _never
) -> Any:
    """One JSON value from ``data``, refused past the limits (see the module)."""
    size = len(data)
    try:
        if size <= max_elements and size <= DIRECT:
            value = json.loads(data)
            if could_nest(data, JSON_OPENERS, max_depth):
                check_shape(value, max_depth, max_elements)
            return value
        elements = scan_json(data, max_depth, max_elements, abandoned)
        if elements <= DIRECT:  # few values, however long their text: C is quick
            return json.loads(data)
        text = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads does
        with gc_paused():
            return _PyDecoder().decode(text)
    except RecursionError:
        raise too_deep(max_depth) from None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection while a big value is built: a full pass over a freshly
    decoded million containers would hold the interpreter (and the loop) for long."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
