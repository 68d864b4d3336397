"""Bounded decoding agrees with the plain decoders and refuses exactly what is past the
limits, whichever path (direct, scanned, sliced, pure-Python JSON) a body takes."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpc import BadRequestError
from rpc._bounded import check_shape, json_decode, msgpack_decode, scan_json, scan_msgpack

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=60,
)
msgpack_values = st.recursive(
    scalars | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=5) | st.integers(-9, 9), inner, max_size=4)
    ),
    max_leaves=60,
)


def shape(value: Any) -> tuple[int, int]:
    """(depth, elements) by definition: containers nest from 1; items, keys, values count."""
    if isinstance(value, list):
        inner = [shape(v) for v in value]
        return 1 + max((d for d, _ in inner), default=0), len(value) + sum(e for _, e in inner)
    if isinstance(value, dict):
        inner = [shape(v) for v in value.values()]
        return 1 + max((d for d, _ in inner), default=0), 2 * len(value) + sum(e for _, e in inner)
    return 0, 0


def agrees(decode: Any, plain: Any, data: bytes, value: Any, limits: tuple[int, int]) -> None:
    """``decode`` refuses exactly what is past ``limits``, else returns ``plain(data)``."""
    depth, elements = shape(value)
    ok = depth <= limits[0] and elements <= limits[1]
    try:
        got = decode(data, *limits)
    except BadRequestError:
        assert not ok
    else:
        assert ok and got == plain(data)


@settings(max_examples=300, deadline=None)
@given(value=msgpack_values, max_depth=st.integers(1, 6), max_elements=st.integers(1, 40))
def test_msgpack_scan_and_decode_agree_with_the_definition(
    value: Any, max_depth: int, max_elements: int
) -> None:
    data = msgpack.packb(value, use_bin_type=True)
    assert scan_msgpack(data, 10**6, 10**9) == shape(value)[1]
    plain = lambda d: msgpack.unpackb(d, strict_map_key=False)  # noqa: E731
    agrees(msgpack_decode, plain, data, value, (max_depth, max_elements))


@settings(max_examples=300, deadline=None)
@given(value=values, max_depth=st.integers(1, 6), max_elements=st.integers(1, 40))
def test_json_scan_decode_and_walk_agree_with_the_definition(
    value: Any, max_depth: int, max_elements: int
) -> None:
    data = json.dumps(value, ensure_ascii=False).encode()
    assert scan_json(data, 10**6, 10**9) == shape(value)[1]
    agrees(json_decode, json.loads, data, value, (max_depth, max_elements))

    def walked(d: bytes, max_depth: int, max_elements: int) -> Any:
        check_shape(json.loads(d), max_depth, max_elements)
        return json.loads(d)

    agrees(walked, json.loads, data, value, (max_depth, max_elements))


@pytest.mark.parametrize("kind", ["msgpack", "json"])
def test_large_bodies_take_the_scanned_paths_and_match(kind: str) -> None:
    """Over 64 KiB: scanned first, then decoded directly (few elements) or in slices /
    by the pure-Python scanner (many), each equal to the plain decoder's value."""
    few = [["x" * 200_000, {"k": 'é\\"' * 10_000}]]
    many = [[{"id": i, "tags": ["a", [i, None]], "s": f'"{i}"'} for i in range(15_000)]]
    for value in (few, many):
        if kind == "msgpack":
            data = msgpack.packb(value)
            assert msgpack_decode(data, 10, 200_000) == value
            with pytest.raises(BadRequestError, match="elements"):
                msgpack_decode(data, 10, 100_000 if value is many else 3)
            with pytest.raises(BadRequestError, match="deeper"):
                msgpack_decode(data, 3 if value is many else 2, 200_000)
        else:
            data = json.dumps(value).encode()
            assert json_decode(data, 10, 200_000) == value
            with pytest.raises(BadRequestError, match="elements"):
                json_decode(data, 10, 100_000 if value is many else 3)
            with pytest.raises(BadRequestError, match="deeper"):
                json_decode(data, 3 if value is many else 2, 200_000)
        assert len(data) > 64 * 1024


@pytest.mark.parametrize(
    "data",
    [b"\x91" * 2000 + b"\xc0", b"\xdd\xff\xff\xff\xff", b"\x92\xc0", b"\xc1", b"\x91\xc0\xc0"],
    ids=["2000-deep", "declared-4G", "truncated", "never-used", "extra"],
)
def test_msgpack_hostile_bytes_fail_as_bad_requests_or_decoder_errors(data: bytes) -> None:
    big = data + b"\xc0" * 70_000 if data[0] == 0x91 and len(data) > 3 else data
    for body in (data, big):
        with pytest.raises((BadRequestError, ValueError)):
            msgpack_decode(body, 100, 1_000)
