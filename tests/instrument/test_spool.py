"""The spool: ordered replay, size cap, torn frames, exclusive writers, crash survival."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from instrument import Spool, SpoolEntry, SpoolReader, open_spool

from .conftest import ROOT


def entries(n: int, start: int = 0, topic: str = "callscope.spans") -> list[SpoolEntry]:
    return [SpoolEntry(topic, f"k{i}".encode(), f"value-{i}".encode()) for i in range(start, n)]


def test_append_then_replay_in_order_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=200)
    for start in range(0, 50, 5):
        assert spool.append(entries(start + 5, start)) == 5
    assert len(list(tmp_path.glob("*.seg"))) > 3
    got: list[SpoolEntry] = []
    while batch := spool.read(7):
        got.extend(batch)
        spool.commit()
    assert got == entries(50)
    assert not spool.pending()
    assert len(list(tmp_path.glob("*.seg"))) == 1  # consumed segments are deleted
    spool.append(entries(55, 50))
    assert spool.read(100) == entries(55, 50)
    spool.close()


def test_uncommitted_reads_come_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(entries(5))
    assert len(spool.read(3)) == 3
    spool.replay.rewind()
    assert spool.read(10) == entries(5)
    spool.close()
    again = Spool(tmp_path)  # nothing was committed: a new process replays everything
    assert again.read(10) == entries(5)
    again.close()


def test_size_cap_refuses_and_reports_what_did_not_fit(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    written = spool.append(entries(100))
    assert 0 < written < 100
    assert spool.size_bytes <= 1000
    assert spool.append(entries(1)) == 0
    while spool.read(1000):
        spool.commit()
    assert spool.append(entries(1)) == 1  # room again once replayed
    spool.close()


def test_one_writer_per_directory_and_open_spool_picks_a_free_one(tmp_path: Path) -> None:
    first = open_spool(tmp_path, "svc")
    with pytest.raises(BlockingIOError):
        Spool(tmp_path / "svc")
    second = open_spool(tmp_path, "svc")
    assert second.directory.name == "svc.1"
    first.close()
    second.close()


def test_torn_last_frame_is_cut_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(entries(3))
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    with open(segment, "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")  # a frame cut short by a crash
    spool = Spool(tmp_path)
    spool.append(entries(4, 3))
    assert spool.read(10) == entries(4)
    spool.close()


def test_a_collector_reads_with_its_own_cursor(tmp_path: Path) -> None:
    writer = Spool(tmp_path)
    writer.append(entries(3))
    reader = SpoolReader(tmp_path, "collector")
    assert reader.read() == entries(3)
    reader.commit()
    writer.append(entries(5, 3))
    assert SpoolReader(tmp_path, "collector").read() == entries(5, 3)
    writer.close()


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from instrument import Settings, configure
    settings = Settings(service_name="crashy", exporter="spool", spool_dir=sys.argv[1],
                        flush_interval_s=0.05, kpi_interval_s=60)
    inst = configure(settings)
    tracer = inst.tracer
    for i in range(200):
        with tracer.start_as_current_span(f"op-{i}"):
            pass
    inst.force_flush()
    print("flushed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close
    """
)


def test_spooled_spans_survive_a_crash(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "flushed" in proc.stdout
    reader = SpoolReader(tmp_path / "crashy")
    got = reader.read(1000)
    names = [e.value.split(b'"name":"')[1].split(b'"')[0].decode() for e in got]
    assert names == [f"op-{i}" for i in range(200)]
    # The next process of the service adopts the dead one's spool (its lock died with it).
    spool = open_spool(tmp_path, "crashy")
    assert spool.directory == tmp_path / "crashy"
    assert len(spool.read(1000)) == 200
    spool.close()
    assert not os.path.exists(tmp_path / "crashy.1")
