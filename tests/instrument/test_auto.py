"""``import instrument.auto`` and ``callscope run``: a three-process chain traced with no code
change, spans on the embedded transport (the spool), log lines carrying the trace id."""

from __future__ import annotations

from pathlib import Path

import pytest

from instrument import SpoolReader
from instrument.model import KpiSample, SpanRecord

from .chain import chain


def read_spool(root: Path) -> tuple[list[SpanRecord], list[KpiSample]]:
    spans: list[SpanRecord] = []
    kpis: list[KpiSample] = []
    for directory in sorted(root.iterdir()):
        for entry in SpoolReader(directory).read(100_000):
            if entry.topic == "callscope.spans":
                spans.append(SpanRecord.from_json(entry.value))
            else:
                kpis.append(KpiSample.from_json(entry.value))
    return spans, kpis


def check_chain(spans: list[SpanRecord], calls: int) -> None:
    traces: dict[str, list[SpanRecord]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    assert len(traces) == calls
    for trace in traces.values():
        got = sorted((s.service, s.kind) for s in trace)
        assert got == [
            ("svc-a", "CLIENT"),
            ("svc-b", "CLIENT"),
            ("svc-b", "SERVER"),
            ("svc-c", "SERVER"),
        ]
        ids = {(s.service, s.kind): s for s in trace}
        assert ids[("svc-a", "CLIENT")].parent_span_id == ""
        assert ids[("svc-b", "SERVER")].parent_span_id == ids[("svc-a", "CLIENT")].span_id
        assert ids[("svc-b", "CLIENT")].parent_span_id == ids[("svc-b", "SERVER")].span_id
        assert ids[("svc-c", "SERVER")].parent_span_id == ids[("svc-b", "CLIENT")].span_id
        assert ids[("svc-c", "SERVER")].peer_service == "svc-b"


@pytest.mark.parametrize("launcher", ["auto", "run"])
def test_chain_is_traced_without_code_changes(tmp_path: Path, launcher: str) -> None:
    env = {"CALLSCOPE_SPOOL_DIR": str(tmp_path), "CALLS": "3"}
    with chain(env, launcher) as result:
        assert result.stdout.split() == ["ABC"] * 3
        stderr = result.stderr
    spans, kpis = read_spool(tmp_path)
    check_chain(spans, 3)
    for trace_id in {s.trace_id for s in spans}:
        assert stderr.count(f"trace_id={trace_id}") == 2, stderr  # a line in B and one in C
    roles = {(k.app, k.role) for k in kpis}
    assert {("svc-a", "consumer"), ("svc-b", "provider"), ("svc-c", "provider")} <= roles
    assert {("svc-a", "process"), ("svc-b", "process"), ("svc-c", "process")} <= roles
    c_provider = next(k for k in kpis if k.app == "svc-c" and k.role == "provider")
    assert c_provider.count == 3 and c_provider.method == "hop"


def test_disabled_does_nothing(tmp_path: Path) -> None:
    env = {"CALLSCOPE_SPOOL_DIR": str(tmp_path), "CALLS": "1", "CALLSCOPE_DISABLED": "1"}
    with chain(env) as result:
        assert result.stdout.split() == ["ABC"]
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
