"""The floors of DESIGN.md §2: a package never imports a package on a higher floor.

``callscope_contract`` is the ground floor (DESIGN §3.8): every package may import it and
it imports none of them; ``tests/contract/test_leaf.py`` checks what importing it loads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Highest floor first, as import-linter's layers contract wants them.
FLOORS = [
    "callscope",
    "dashboard",
    "pipeline",
    "collector",
    "storage",
    "instrument",
    "rpc",
    "callscope_contract",
]


def present_packages() -> list[str]:
    return [name for name in FLOORS if (ROOT / name / "__init__.py").is_file()]


def test_no_package_imports_a_higher_floor(tmp_path: Path) -> None:
    packages = present_packages()
    assert {"callscope_contract", "rpc", "callscope"} <= set(packages)
    listed = "".join(f"\n    {name}" for name in packages)
    config = tmp_path / "importlinter.ini"
    config.write_text(
        f"[importlinter]\nroot_packages ={listed}\n\n"
        "[importlinter:contract:floors]\n"
        "name = Floors of DESIGN.md section 2\n"
        f"type = layers\nlayers ={listed}\n\n"
        "[importlinter:contract:light]\n"
        "name = storage reads the contract, not instrumentation (DESIGN section 3.8)\n"
        "type = forbidden\nsource_modules =\n    storage\n"
        "forbidden_modules =\n    instrument\n"
    )
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), str(config), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_package_reaches_into_another_packages_private_module() -> None:
    offenders = []
    for package in present_packages():
        for path in (ROOT / package).rglob("*.py"):
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                stripped = line.strip()
                if not stripped.startswith(("from ", "import ")):
                    continue
                for other in present_packages():
                    if other == package:
                        continue
                    if f"{other}._" in stripped:
                        offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {stripped}")
    assert not offenders, "\n".join(offenders)
