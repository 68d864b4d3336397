"""Row keys, after Pinpoint's HBase schema: salted so writes spread over regions.

* ``traces``: ``salt(1) + trace_id(16 bytes)`` -- one row per trace, a column per span.
* ``trace_index``: ``salt(1) + service + 0x00 + reversed start(8) + trace_id(16)`` -- for a
  service, newest first inside each salt bucket; a time range is a row range.

The salt is ``crc32(trace_id) % buckets``: a trace's rows share a bucket, and a service's
index rows spread over all buckets, so a search scans each bucket (``buckets`` scans).
"""

from __future__ import annotations

import struct
import zlib

__all__ = [
    "REVERSE_BASE",
    "index_prefix",
    "index_range",
    "index_row",
    "salt",
    "split_keys",
    "trace_row",
]

REVERSE_BASE = (1 << 63) - 1
_U64 = struct.Struct(">Q")


def salt(trace_id: str, buckets: int) -> int:
    return zlib.crc32(trace_id.encode()) % buckets


def trace_row(trace_id: str, buckets: int) -> bytes:
    return bytes([salt(trace_id, buckets)]) + bytes.fromhex(trace_id)


def index_prefix(bucket: int, service: str) -> bytes:
    return bytes([bucket]) + service.encode() + b"\x00"


def index_row(trace_id: str, service: str, start_us: int, buckets: int) -> bytes:
    prefix = index_prefix(salt(trace_id, buckets), service)
    return prefix + _U64.pack(REVERSE_BASE - start_us) + bytes.fromhex(trace_id)


def index_range(
    bucket: int, service: str, start_min_us: int | None, start_max_us: int | None
) -> tuple[bytes, bytes]:
    """Rows of spans starting in ``[start_min_us, start_max_us)``, as ``(start, stop)``."""
    prefix = index_prefix(bucket, service)
    first = prefix if start_max_us is None else prefix + _U64.pack(REVERSE_BASE - start_max_us + 1)
    stop = (
        prefix[:-1] + b"\x01"
        if start_min_us is None
        else prefix + _U64.pack(REVERSE_BASE - start_min_us + 1)
    )
    return first, stop


def index_trace_id(row: bytes) -> str:
    return row[-16:].hex()


def index_start_us(row: bytes) -> int:
    return REVERSE_BASE - _U64.unpack(row[-24:-16])[0]


def split_keys(buckets: int) -> list[bytes]:
    """Region boundaries for a pre-split table: one region per salt bucket."""
    return [bytes([b]) for b in range(1, buckets)]
