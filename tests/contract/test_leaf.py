"""The contract is a leaf (DESIGN §3.8): importing it, storage or pipeline loads no framework.

Each import runs in a fresh interpreter, so what an earlier test imported cannot hide
a heavy import; the module names are what a Spark executor or the dashboard would pay for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import callscope_contract

HEAVY = ("rpc", "opentelemetry", "uvloop", "instrument", "pyspark")
LIGHT = ["callscope_contract", "storage", "pipeline"]
ROOT = Path(__file__).resolve().parents[2]


def loaded_after_import(module: str) -> dict[str, str]:
    """Every module a fresh interpreter holds after ``import module``, with its file."""
    probe = (
        "import json, sys\n"
        f"import {module}\n"
        "print(json.dumps({n: getattr(m, '__file__', None) or '' for n, m in sys.modules.items()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize("module", LIGHT)
def test_importing_loads_no_framework_nor_c_module(module: str) -> None:
    loaded = loaded_after_import(module)
    heavy = [name for name in loaded if name.split(".")[0] in HEAVY]
    assert not heavy, f"import {module} loaded {heavy}"
    ours_in_c = [
        name
        for name, path in loaded.items()
        if path.endswith((".so", ".pyd"))
        and Path(path).resolve().is_relative_to(ROOT)
        and "site-packages" not in Path(path).parts
    ]
    assert not ours_in_c, f"import {module} loaded C modules of callscope: {ours_in_c}"


def test_every_exported_name_exists() -> None:
    missing = [name for name in callscope_contract.__all__ if not hasattr(callscope_contract, name)]
    assert not missing


def test_instrument_model_re_exports_the_same_classes() -> None:
    from instrument import model

    for name in model.__all__:
        assert getattr(model, name) is getattr(callscope_contract, name)


def test_rpc_speaks_the_contracts_error_codes() -> None:
    import rpc

    assert rpc.ErrorCode is callscope_contract.ErrorCode
    assert "TIMEOUT" in callscope_contract.ERROR_CODES
    codes = {cls.code for cls in _subclasses(rpc.RpcError)}
    assert codes <= callscope_contract.ERROR_CODES


def test_every_variable_is_a_documented_constant_named_once() -> None:
    env = callscope_contract.environment
    for name in env.__all__:
        assert getattr(env, name) == name and name.startswith("CALLSCOPE_")
    assert len(set(env.__all__)) == len(env.__all__)


def _subclasses(cls: type) -> list[type]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found
