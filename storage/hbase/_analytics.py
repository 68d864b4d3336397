"""Analytics rows in HBase: row ``kind 0x00 service 0x00 time(8) 0x00 key``, column ``a:b``.

A service's rows of one kind sort by time, so a time range is a row range.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from typing import Any

from .._api import AnalyticsRow
from .._backends import StoreUrl
from ._client import HBase

__all__ = ["HBaseAnalyticsTable"]

ANALYTICS = "analytics"
_U64 = struct.Struct(">Q")


def _prefix(kind: str, service: str) -> bytes:
    return kind.encode() + b"\x00" + service.encode() + b"\x00"


class HBaseAnalyticsTable:
    def __init__(self, url: StoreUrl) -> None:
        self.url = url.url
        self.hbase = HBase(url, {ANALYTICS: {"a": {"max_versions": 1}}})

    def put(self, kind: str, rows: Iterable[AnalyticsRow]) -> None:
        puts = [
            (_prefix(kind, service) + _U64.pack(time_us) + b"\x00" + key.encode(),
             {b"a:b": json.dumps(body).encode(), b"a:t": _U64.pack(time_us)})
            for key, service, time_us, body in rows
        ]  # fmt: skip

        def put(conn: Any) -> None:
            with conn.table(ANALYTICS).batch(batch_size=1000) as batch:
                for row, columns in puts:
                    batch.put(row, columns)

        self.hbase.run("write analytics", put)

    def rows(
        self, kind: str, service: str | None, start_us: int, end_us: int
    ) -> list[dict[str, Any]]:
        if service is None:
            prefix = kind.encode() + b"\x00"
            scan = {"row_prefix": prefix}
        else:
            prefix = _prefix(kind, service)
            scan = {
                "row_start": prefix + _U64.pack(start_us),
                "row_stop": prefix + _U64.pack(end_us),
            }

        def read(conn: Any) -> list[dict[str, Any]]:
            out = []
            for _, columns in conn.table(ANALYTICS).scan(batch_size=1000, **scan):
                if start_us <= _U64.unpack(columns[b"a:t"])[0] < end_us:
                    out.append(json.loads(columns[b"a:b"]))
            return out

        return self.hbase.run("read analytics", read)

    def page(
        self,
        kind: str,
        service: str,
        start_us: int,
        end_us: int,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Newest first: one reverse scan of the service's row range, ``limit`` rows."""
        prefix = _prefix(kind, service)
        stop = prefix + _U64.pack(start_us)  # a reverse scan stops before this (exclusive)
        if before is not None and before[0] < end_us:
            first = prefix + _U64.pack(before[0]) + b"\x00" + before[1].encode()
        else:
            first = prefix + _U64.pack(end_us)  # below every row of time end_us
        skip = first if before is not None and before[0] < end_us else None

        def read(conn: Any) -> list[tuple[int, str, dict[str, Any]]]:
            out = []
            scan = conn.table(ANALYTICS).scan(row_start=first, row_stop=stop, reverse=True,
                                              batch_size=min(limit + 1, 1000))  # fmt: skip
            for row, columns in scan:
                if row == skip:  # a reverse scan starts at its start row, inclusive
                    continue
                time_us = _U64.unpack(columns[b"a:t"])[0]
                key = row[len(prefix) + _U64.size + 1 :].decode()
                out.append((time_us, key, json.loads(columns[b"a:b"])))
                if len(out) == limit:
                    break
            return out

        return self.hbase.run("read analytics", read)

    def delete_before(self, cutoff_us: int) -> None:
        def delete(conn: Any) -> None:
            table = conn.table(ANALYTICS)
            with table.batch(batch_size=1000) as batch:
                for row, columns in table.scan(columns=[b"a:t"], batch_size=1000):
                    if _U64.unpack(columns[b"a:t"])[0] < cutoff_us:
                        batch.delete(row)

        self.hbase.run("delete analytics", delete)

    def clear(self) -> None:
        self.hbase.clear([ANALYTICS])

    def refresh(self) -> None:
        """HBase reads see every acknowledged put."""

    def drop(self) -> None:
        self.hbase.drop()

    def close(self) -> None:
        self.hbase.close()
