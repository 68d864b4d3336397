"""The public surface is exactly ``instrument.__all__`` (STYLE §1)."""

from __future__ import annotations

import instrument
from instrument import environment


def test_every_exported_name_exists() -> None:
    missing = [name for name in instrument.__all__ if not hasattr(instrument, name)]
    assert not missing


def test_every_public_class_and_function_is_exported() -> None:
    public = {
        name
        for name, value in vars(instrument).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", "").startswith("instrument")
    }
    assert public <= set(instrument.__all__)


def test_every_variable_is_a_documented_constant() -> None:
    for name in environment.__all__:
        assert getattr(environment, name) == name and name.startswith("CALLSCOPE_")
