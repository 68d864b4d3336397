"""HBase smoke test: a row put through the Thrift server with happybase is read back."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.hbase


def test_put_and_get(hbase_thrift: str) -> None:
    import happybase

    host, port = hbase_thrift.rsplit(":", 1)
    name = f"callscope_test_{uuid.uuid4().hex[:8]}"
    connection = happybase.Connection(host, int(port), timeout=60_000)
    try:
        connection.create_table(name, {"s": {"max_versions": 1}})
        table = connection.table(name)
        table.put(b"4bf92f35|00f067aa", {b"s:name": b"orders.OrderService/create"})
        assert table.row(b"4bf92f35|00f067aa") == {b"s:name": b"orders.OrderService/create"}
        assert name.encode() in connection.tables()
    finally:
        if name.encode() in connection.tables():
            connection.delete_table(name, disable=True)
        connection.close()
