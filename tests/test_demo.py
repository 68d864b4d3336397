"""`make demo`'s job: provider and consumer processes, traced through the spool into SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_whole_embedded_loop(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callscope", "demo", "--calls", "4", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "#4" in out and "NOT_FOUND: no such item 'scones'" in out
    assert "8 spans stored (expected 8)" in out
    assert "CLIENT demo.Shop/order" in out and "SERVER demo.Shop/order" in out
    assert (tmp_path / "spans.db").is_file()
