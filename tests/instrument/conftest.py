"""Fixtures for instrumentation tests: an in-memory pipeline, and the RPC test servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from instrument import Instrumentation, MemoryExporter, Settings, configure
from tests.rpc.conftest import Echo, make_client, make_server  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def memory() -> MemoryExporter:
    return MemoryExporter()


@pytest.fixture
def tracing(memory: MemoryExporter, tmp_path: Path) -> Iterator[Instrumentation]:
    """Instrumentation into ``memory``, not installed globally (tests pass its interceptors)."""
    settings = Settings(
        service_name="svc",
        instance="127.0.0.1:1",
        host="testhost",
        kpi_interval_s=60,
        flush_interval_s=0.05,
        spool_dir=str(tmp_path / "spool"),
    )
    inst = configure(settings, exporter=memory)
    yield inst
    inst.shutdown()
