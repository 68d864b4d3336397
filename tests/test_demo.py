"""`make demo`'s job: provider and consumer processes, traced through the spool into SQLite;
the hints it prints work when pasted, and it leaves nothing behind unless asked."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from storage import open_analytics_store


def _demo(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "callscope", "demo", "--calls", "4", *argv],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_runs_the_whole_embedded_loop_and_its_hints_work(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    out = _demo("--workdir", str(workdir), cwd=tmp_path)
    assert "#4" in out and "NOT_FOUND: no such item 'scones'" in out
    assert "8 spans stored (expected 8)" in out
    lines = out.splitlines()
    tree = [line.split()[:2] for line in lines if line.startswith(("  CLIENT", "    SERVER"))]
    assert tree == [["CLIENT", "demo.Shop/order"], ["SERVER", "demo.Shop/order"]]
    assert (workdir / "spans.db").is_file()  # a --workdir is the user's: kept
    with open_analytics_store(f"sqlite://{workdir / 'spans.db'}", read_only=True) as analytics:
        samples = analytics.kpis("demo.Shop", 0, 2**62)
    calls = {
        role: sum(s.count for s in samples if s.role == role) for role in ("provider", "consumer")
    }
    assert calls == {"provider": 4, "consumer": 4}  # the consumer's last window too
    hints = [line.strip() for line in lines if " --store sqlite://" in line]
    assert len(hints) == 3
    # pasted into a shell whose PATH lacks the venv, as after a plain `make demo`
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}
    for hint in hints:
        argv = shlex.split(hint)
        assert argv[0] != "callscope"
        shown = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=bare)
        assert shown.returncode == 0, hint + shown.stderr
        assert "demo-consumer" in shown.stdout or "demo.Shop/order" in shown.stdout


def test_demo_removes_its_temporary_directory_unless_kept(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    out = _demo(cwd=tmp_path, env=env)
    assert list(temp.iterdir()) == []
    assert "demo --keep" in out
    _demo("--keep", cwd=tmp_path, env=env)
    (kept,) = temp.iterdir()
    assert (kept / "spans.db").is_file()


def test_make_demo_installs_only_the_runtime_quietly_in_numbered_steps(tmp_path: Path) -> None:
    """`make demo` on a fresh machine: no test toolchain, no build noise, visible steps."""
    root = Path(__file__).resolve().parents[1]
    plan = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"],
        cwd=root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    installs = [line for line in plan.stdout.splitlines() if "pip install" in line]
    assert installs and all("--quiet" in line and "PYTHONWARNINGS=ignore" in line
                            for line in installs)  # fmt: skip
    assert installs[-1].endswith("-e .")  # the runtime, not '.[dev]'
    steps = [line for line in plan.stdout.splitlines() if "make demo [" in line]
    assert [s.split("[", 1)[1][:3] for s in steps] == ["1/3", "2/3", "3/3"]
    assert ".runtime-" in plan.stdout and ".installed-" not in plan.stdout
