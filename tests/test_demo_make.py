"""`make demo` on a fresh machine: the runtime and pyspark only, quietly, in numbered steps."""

from __future__ import annotations

import subprocess
from pathlib import Path


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
    assert installs[-1].endswith("-e '.[spark]'")  # the runtime and Spark, not '.[dev]'
    steps = [line for line in plan.stdout.splitlines() if "make demo [" in line]
    assert [s.split("[", 1)[1][:3] for s in steps] == ["1/3", "2/3", "3/3"]
    assert ".runtime-" in plan.stdout and ".installed-" not in plan.stdout
