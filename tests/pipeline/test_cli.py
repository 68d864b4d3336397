"""``callscope pipeline batch`` from the shell: options, progress, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from callscope.cli import main
from callscope.pipeline_cli import parse_time
from storage import open_analytics_store, open_span_store

from .traces import generate

HOUR_US = 3_600_000_000
BASE = 1_764_147_600_000_000  # 2025-11-26T09:00:00Z, on the hour


def test_times_are_ago_iso_or_micros() -> None:
    now = 1_764_150_000.0
    assert parse_time("1h", now) == int((now - 3600) * 1e6)
    assert parse_time("90s", now) == int((now - 90) * 1e6)
    assert parse_time("2025-11-26T09:00") == BASE  # no zone: UTC
    assert parse_time("2025-11-26T10:00+01:00") == BASE
    assert parse_time(str(BASE)) == BASE
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_a_batch_run_reports_progress_and_writes_the_store(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = f"sqlite://{tmp_path / 'spans.db'}", f"sqlite://{tmp_path / 'out.db'}"
    with open_span_store(source) as store:
        store.write_spans(generate(20, BASE + 1000, HOUR_US // 2))
    rc = main(["pipeline", "batch", "--source", source, "--from", "2025-11-26T09:00",
               "--to", "2025-11-26T10:00", "--store", out, "--top", "3"])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "Spark UI:" in printed and "computing the dependency graph" in printed
    assert "edges:" in printed.splitlines()[-1]
    with open_analytics_store(out) as analytics:
        edges = analytics.dependencies(BASE, BASE + HOUR_US)
    assert {(e.caller, e.callee) for e in edges} >= {("gateway", "orders"), ("orders", "mysql")}


def test_a_bad_window_is_a_usage_error(spark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pipeline", "batch", "--source", "file:///nowhere", "--from", "1h", "--window", "0"]
    assert main(args) == 2
    assert "BAD_OPTION" in capsys.readouterr().err
    assert main(["pipeline", "batch", "--from", "last week"]) == 2


def test_a_stream_with_too_short_a_window_is_refused(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["pipeline", "stream", "--source", "kafka://127.0.0.1:9/t", "--window", "2",
            "--checkpoint", str(tmp_path)]  # fmt: skip
    assert main(args) == 2
    assert "BAD_OPTION" in capsys.readouterr().err


@pytest.mark.parametrize("count", ["0", "10001", "two"])
def test_a_stream_s_partitions_are_checked(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["pipeline", "stream", "--source", "kafka://127.0.0.1:9/t", "--partitions", count]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2 and "--partitions" in capsys.readouterr().err
