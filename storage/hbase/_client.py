"""happybase connections (a pool, over Thrift v1), table creation, and error conversion."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .._backends import StoreUrl
from .._errors import NoStore, StorageError, StorageUnavailable

__all__ = ["HBase"]

T = TypeVar("T")


class HBase:
    """A pool of Thrift connections whose tables carry ``<prefix>_``."""

    def __init__(self, url: StoreUrl, families: dict[str, dict[str, dict[str, Any]]]) -> None:
        import happybase

        host, port = url.host_port(9090)
        self.prefix = url.option("prefix", "callscope")
        self.size = url.int_option("pool", 8)  # a search scans this many salt buckets at once
        self.pool = self.guard(
            lambda: happybase.ConnectionPool(
                self.size, host=host, port=port, table_prefix=self.prefix,
                timeout=url.int_option("timeout_s", 30) * 1000,
            ),
            "connect",
        )  # fmt: skip
        self.families = families
        if url.read_only:
            self._check_tables(url.url)
        else:
            self._create_tables()

    @staticmethod
    def guard(call: Callable[[], T], what: str) -> T:
        """Run ``call``; HBase being down, slow or busy becomes :class:`StorageUnavailable`."""
        from happybase import NoConnectionsAvailable
        from thriftpy2.thrift import TException
        from thriftpy2.transport import TTransportException

        try:
            return call()
        except (TTransportException, NoConnectionsAvailable, socket.timeout, OSError) as exc:
            raise StorageUnavailable(f"hbase {what}: {exc}") from exc
        except TException as exc:  # Hbase.IOError: region moving, server busy, ...
            if type(exc).__name__ == "IllegalArgument":
                raise StorageError(f"hbase {what}: {exc}") from exc
            raise StorageUnavailable(f"hbase {what}: {exc}") from exc

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self.pool.connection(timeout=30) as conn:
            yield conn

    def run(self, what: str, work: Callable[[Any], T]) -> T:
        """``work(connection)`` with a pooled connection, errors converted."""

        def call() -> T:
            with self.connection() as conn:
                return work(conn)

        return self.guard(call, what)

    def _check_tables(self, url: str) -> None:
        """Opened to read: the tables must be there already (a writer created them)."""
        existing = self.run("list tables", lambda conn: {t.decode() for t in conn.tables()})
        missing = sorted(set(self.families) - existing)
        if missing:
            self.close()
            raise NoStore(f"no store at {url}: no table {self.prefix}_{missing[0]}")

    def _create_tables(self) -> None:
        def create(conn: Any) -> None:
            existing = {t.decode() for t in conn.tables()}
            for name, families in self.families.items():
                if name in existing:
                    continue
                try:
                    conn.create_table(name, families)
                except Exception as exc:  # another process created it meanwhile
                    if "AlreadyExists" not in repr(exc):
                        raise

        self.run("create tables", create)

    def drop(self) -> None:
        def drop(conn: Any) -> None:
            existing = {t.decode() for t in conn.tables()}
            for name in self.families:
                if name in existing:
                    conn.delete_table(name, disable=True)

        self.run("drop tables", drop)

    def clear(self, names: list[str]) -> None:
        """Delete every row of the named tables (tests; a scan, fine for small tables)."""

        def clear(conn: Any) -> None:
            for name in names:
                table = conn.table(name)
                with table.batch(batch_size=1000) as batch:
                    for key, _ in table.scan(filter=b"KeyOnlyFilter()", batch_size=1000):
                        batch.delete(key)

        self.run("clear", clear)

    def close(self) -> None:
        """happybase pools have no close; drop our reference and let sockets go."""
        for conn in list(getattr(self.pool, "_queue").queue):  # noqa: B009
            conn.close()
