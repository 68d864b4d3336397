"""The embedded registry's client: what it sends on its session."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rpc.registry import EmbeddedRegistry, ServiceInstance, connect

from .conftest import InProcess


async def test_the_first_registration_and_listing_are_sent_once(inproc: InProcess, monkeypatch,
                                                                  caplog) -> None:  # fmt: skip
    server = await inproc.start()
    sent: list[str] = []
    call = EmbeddedRegistry._call

    async def counted(self: EmbeddedRegistry, method: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(method)
        return await call(self, method, *args, **kwargs)

    monkeypatch.setattr(EmbeddedRegistry, "_call", counted)
    caplog.set_level(logging.INFO, "callscope.registry")
    provider = connect(f"callscope://provider-token@{server.address}?heartbeat=5")
    consumer = connect(f"callscope://reader-token@{server.address}?heartbeat=5")
    try:
        await asyncio.to_thread(provider.register, ServiceInstance("e.Svc", "127.0.0.1:7001"))
        await asyncio.to_thread(provider.register, ServiceInstance("e.Svc", "127.0.0.1:7002"))
        await asyncio.to_thread(consumer.subscribe, "e.Svc", lambda _: None)
        assert sent.count("open_session") == 2  # one each
        assert sent.count("register") == 2  # the first session's replay held neither
        assert sent.count("add_consumer") == 1
        assert "again" not in caplog.text
        listed = await asyncio.to_thread(consumer.lookup, "e.Svc")
        assert sorted(i.address for i in listed) == ["127.0.0.1:7001", "127.0.0.1:7002"]
        assert [c.service for c in await asyncio.to_thread(consumer.consumers)] == ["e.Svc"]
    finally:
        await asyncio.to_thread(provider.close)
        await asyncio.to_thread(consumer.close)
