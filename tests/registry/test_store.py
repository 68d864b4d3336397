"""A database written before sessions had principals and before the limits: it opens,
its sessions keep their owners, and rows that break today's limits are dropped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .conftest import InProcess, instance

OLD_SCHEMA = """
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER);
CREATE TABLE sessions (id TEXT PRIMARY KEY, ttl REAL NOT NULL, owner TEXT);
CREATE TABLE instances (
    service TEXT, id TEXT, session TEXT, data TEXT NOT NULL, PRIMARY KEY (service, id));
CREATE TABLE consumers (
    service TEXT, id TEXT, session TEXT, data TEXT NOT NULL, PRIMARY KEY (service, id));
"""


def old_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO meta VALUES ('revision', '3')")
    db.execute("INSERT INTO sessions VALUES ('s1', 100.0, 'provider/host:1')")
    rows = {
        "127.0.0.1:7001#1.0#": instance(address="127.0.0.1:7001"),
        "127.0.0.1:7002#1.0#": instance(address="127.0.0.1:7002", metadata={"k": "v" * 9000}),
        "evil host:80#1.0#": instance(address="evil host:80"),
    }
    for key, data in rows.items():
        db.execute("INSERT INTO instances VALUES ('t.Svc', ?, 's1', ?)", (key, json.dumps(data)))
    db.execute("INSERT INTO config VALUES ('t/doc', '{\"v\": 1}', 1)")
    db.commit()
    db.close()


async def test_an_older_database_opens_with_its_owners_and_without_oversize_rows(
    inproc: InProcess,
) -> None:
    old_database(inproc.tmp / "r.db")
    server = await inproc.start()
    provider, reader = inproc.raw(server, "provider-token"), inproc.raw(server, "reader-token")
    assert await provider.code("keepalive", "s1") == "OK"  # the owner's name was its principal
    assert await reader.code("keepalive", "s1") == "PERMISSION_DENIED"
    listed = [i["address"] for i in await reader.call("lookup", "t.Svc")]
    assert listed == ["127.0.0.1:7001"]
    assert (await reader.call("get_config", "t/doc"))["value"] == {"v": 1}
    port = int(server.address.rpartition(":")[2])
    await server.stop(0.2)
    again = await inproc.start(port=port)  # the dropped rows are gone from the file too
    assert [
        i["address"] for i in await inproc.raw(again, "reader-token").call("lookup", "t.Svc")
    ] == listed
    db = sqlite3.connect(inproc.tmp / "r.db")
    assert db.execute("SELECT count(*) FROM instances").fetchone() == (1,)
    db.close()
