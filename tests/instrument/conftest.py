"""Fixtures for instrumentation tests: an in-memory pipeline, and the RPC test servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from instrument import Instrumentation, MemoryExporter, Settings, configure
from tests.rpc.conftest import Echo, make_client, make_server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def memory() -> MemoryExporter:
    return MemoryExporter()


def native_turned_off() -> bool:
    return os.environ.get("CALLSCOPE_NATIVE", "1").strip().lower() in ("0", "false", "no", "off")


@pytest.fixture(params=["c", "python"])
def tracing(
    request: pytest.FixtureRequest, memory: MemoryExporter, tmp_path: Path
) -> Iterator[Instrumentation]:
    """Instrumentation into ``memory``, not installed globally (tests pass its interceptors).

    Twice: with the interceptors' C fast path (which must be built, unless
    ``CALLSCOPE_NATIVE=0``), and with the Python reference path alone."""
    settings = Settings(
        service_name="svc",
        instance="127.0.0.1:1",
        host="testhost",
        kpi_interval_s=60,
        flush_interval_s=0.05,
        spool_dir=str(tmp_path / "spool"),
    )
    inst = configure(settings, exporter=memory)
    hot = (inst.client_interceptor._hot, inst.server_interceptor._hot)
    if request.param == "python":
        inst.client_interceptor._hot = inst.server_interceptor._hot = None
    elif not native_turned_off():
        assert None not in hot, "the C hot path (instrument/_hotpath.c) is not built or not used"
    yield inst
    inst.shutdown()
