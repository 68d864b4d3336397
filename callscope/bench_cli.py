"""``callscope bench [NAME [ARGS...]]``: list or run the benchmarks of a checkout.

The scripts live in the repository's ``benchmarks/`` (each measures callscope against a
named peer in the same run and prints one JSON line last); this command finds them from
an editable install or the current directory, so ``callscope bench rpc_echo`` equals
``python benchmarks/rpc_echo.py``.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

from ._table import table_lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="list the benchmarks, or run one (callscope against a named peer)",
        description="Without NAME: the benchmarks and what each measures. With NAME: run "
        "benchmarks/NAME.py with ARGS (e.g. `callscope bench rpc_echo --seconds 5`).",
    )
    p.add_argument("name", nargs="?", help="a benchmark, e.g. rpc_echo")
    p.add_argument("args", nargs=argparse.REMAINDER, help="its options (see NAME --help)")
    p.set_defaults(handler=run)


def benchmarks_dir() -> Path:
    """``benchmarks/`` beside the installed package (editable install), else in the cwd."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / "benchmarks").is_dir():
            return root / "benchmarks"
    raise ValueError(
        "no benchmarks/ here: run callscope bench from a clone of the repository "
        "(or `make bench` there)"
    )


def scripts(folder: Path) -> dict[str, str]:
    """Benchmark name -> the first line of its docstring (what it measures)."""
    found = {}
    for path in sorted(folder.glob("[!_]*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        found[path.stem] = doc.splitlines()[0] if doc else ""
    return found


def run(args: argparse.Namespace) -> int:
    folder = benchmarks_dir()
    known = scripts(folder)
    if not args.name:
        print("\n".join(table_lines(("BENCHMARK", "MEASURES"), sorted(known.items()))))
        print(f"\nrun one: callscope bench NAME [ARGS]; results and commands: {folder}/RESULTS.md")
        return 0
    name = args.name.removesuffix(".py")
    if name not in known:
        raise ValueError(f"no benchmark {args.name!r}; there are: {', '.join(known)}")
    extra = args.args[1:] if args.args[:1] == ["--"] else args.args
    return subprocess.call([sys.executable, str(folder / f"{name}.py"), *extra])
