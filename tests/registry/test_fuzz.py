"""A seeded fuzzer of the embedded registry: whatever a client can encode, every method
answers OK or a caller's error (never INTERNAL), and memory and SQLite stay equal."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

from .conftest import InProcess, instance

METHODS = [
    "open_session", "keepalive", "close_session", "register", "unregister", "lookup",
    "services", "add_consumer", "remove_consumer", "consumers", "get_config", "put_config",
    "delete_config", "list_config", "watch",
]  # fmt: skip
CALLERS_ERRORS = {
    "OK", "BAD_REQUEST", "PERMISSION_DENIED", "NOT_FOUND", "CONFLICT", "RESOURCE_EXHAUSTED",
}  # fmt: skip
NAMES = ["f.A", "f.B", "b.Svc"]
KEYS = ["f/a", "b/doc", "governance/f.A/weights"]
CALLS = 4000


def scalar(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 1, 7, 2**31, 2**63 - 1, -(2**63), 2**64 - 1,
        math.nan, math.inf, -math.inf, -0.0, 1e308, 0.5,
        "", "f.A", "b.Svc", "f/a", "127.0.0.1:7001", "x" * 5000, "\u0663\u0664", "\x00",
        "a/../b", "evil host:80", "[::1]:80", b"", b"\xff" * 64,
    ])  # fmt: skip


def value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.6:
        return scalar(rng)
    if roll < 0.8:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["k", "service", "address", "id", "weight", "metadata", 1, "", "x" * 200]
    return {rng.choice(keys): value(rng, depth + 1) for _ in range(rng.randrange(4))}


def plausible(
    rng: random.Random, method: str, own: list[str], others: list[str], epoch: str
) -> list[Any]:
    """Arguments near the valid ones (mostly the caller's own sessions), some part
    replaced by anything."""
    roll = rng.random()
    session = (rng.choice(own) if own and roll < 0.8 else
               rng.choice(others) if others and roll < 0.9 else value(rng))  # fmt: skip
    name, key = rng.choice(NAMES), rng.choice(KEYS)
    item = instance(name, f"10.0.0.{rng.randrange(1, 5)}:7001")
    if rng.random() < 0.3:
        item[rng.choice(list(item))] = value(rng)
    consumer = {"service": name, "id": f"c{rng.randrange(3)}"}
    args = {
        "open_session": [rng.choice([30.0, 60.0, value(rng)]), "fuzz"],
        "keepalive": [session],
        "close_session": [session],
        "register": [session, item],
        "unregister": [session, name, f"10.0.0.{rng.randrange(1, 5)}:7001#1.0#"],
        "lookup": [name],
        "services": [],
        "add_consumer": [session, consumer],
        "remove_consumer": [session, name, consumer["id"]],
        "consumers": [rng.choice([None, name])],
        "get_config": [key],
        "put_config": [
            key,
            rng.choice([{"10.0.0.1:7001": 5}, value(rng)]),
            rng.choice([None, 0, 1, 2, value(rng)]),
        ],
        "delete_config": [key, rng.choice([None, 1, value(rng)])],
        "list_config": [rng.choice(["", "f/", value(rng)])],
        "watch": [epoch, rng.choice([0, 10**6, value(rng)]), 0.0],
    }[method]
    if rng.random() < 0.1 and args:
        args[rng.randrange(len(args))] = value(rng)
    return args


async def snapshot(caller: Any) -> dict[str, Any]:
    return {
        "instances": {n: sorted(map(repr, await caller.call("lookup", n))) for n in NAMES},
        "consumers": sorted(map(repr, await caller.call("consumers"))),
        "config": await caller.call("list_config", ""),
    }


async def test_no_input_answers_internal_and_memory_equals_sqlite(inproc: InProcess) -> None:
    rng = random.Random(20261130)
    server = await inproc.start()
    port = int(server.address.rpartition(":")[2])
    callers = [inproc.raw(server, t) for t in ("admin-token", "reader-token", "tenant-b-token")]
    epoch = (await callers[0].call("watch", "", 0, 0.0))["epoch"]
    sessions: dict[Any, list[str]] = {caller: [] for caller in callers}
    surprises, ok = [], Counter[str]()
    for _ in range(CALLS):
        caller, method = rng.choice(callers), rng.choice(METHODS)
        own, others = sessions[caller], [s for c in callers if c is not caller for s in sessions[c]]
        args = plausible(rng, method, own, others, epoch) if rng.random() < 0.85 else [
            value(rng) for _ in range(rng.randrange(5))
        ]  # fmt: skip
        try:
            result = await caller.call(method, *args)
            code = "OK"
        except Exception as err:
            code = getattr(err, "code", repr(err))
            result = None
        if code == "OK":
            ok[method] += 1
            if method == "open_session":
                sessions[caller].append(result["session"])
        if code not in CALLERS_ERRORS:
            surprises.append(f"{method}{tuple(repr(a)[:60] for a in args)} -> {code}")
    assert surprises == []
    assert min(ok[m] for m in ("register", "put_config", "unregister", "close_session")) > 5, ok
    before = await snapshot(callers[0])
    await server.stop(0.2)
    again = await inproc.start(port=port)
    assert await snapshot(inproc.raw(again, "admin-token")) == before
