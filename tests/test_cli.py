"""``callscope``'s front door: every command listed once with one line, a version, and
usage errors that say what to do."""

from __future__ import annotations

import argparse
import re
from importlib import metadata

import pytest

from callscope.cli import build_parser, main


def _help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_help_lists_each_public_command_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys)
    assert "SUPPRESS" not in text
    listed = re.findall(r"^    (\S+) +\S.*$", text, flags=re.MULTILINE)
    assert len(listed) == len(set(listed))
    for expected in ("demo", "run", "registry", "config", "collector", "trace", "traces", "kpis",
                     "services", "stack", "bench"):  # fmt: skip
        assert expected in listed
    # every listed command has its help on that line: no continuation lines under it
    block = text.split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    assert all(re.match(r"^    \S+ +\S", line) for line in block.splitlines()), block
    # internal commands (no help) run but are not listed
    assert "demo-service" in _commands() and "demo-service" not in listed


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"callscope {metadata.version('callscope')}"


def test_an_unknown_command_points_to_help_without_naming_internal_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["frobnicate"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown command: 'frobnicate'" in err
    assert "callscope --help" in err
    assert "demo-service" not in err


def test_a_bad_value_names_the_command_and_its_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["traces", "--service", "x", "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "--since is a number and a unit" in err
    assert "callscope traces --help" in err


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_errors_say_what_to_do_next(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = f"callscope://127.0.0.1:{_closed_port()}"
    assert main(["config", "get", "k", "--registry", registry]) == 1
    err = capsys.readouterr().err
    assert "UNAVAILABLE" in err and f"is a registry serving {registry}?" in err
    assert "registry` starts one" in err
    assert main(["services", "--registry", registry]) == 1
    assert "--registry URL (or set $CALLSCOPE_REGISTRY)" in capsys.readouterr().err
    missing = f"sqlite://{tmp_path / 'nothing.db'}"
    assert main(["services", "--store", missing]) == 2
    assert f"collector --store {missing}` to fill it" in capsys.readouterr().err
    argv = ["collector", "--store", "bogus://x", "--http-port", "-1", "--summary-interval", "0"]
    assert main(argv) == 2  # a long-running command: one line and a hint, not a traceback
    err = capsys.readouterr().err
    assert "BAD_REQUEST: no storage backend for bogus://" in err and "collector --help" in err


def test_bench_lists_the_benchmarks_and_runs_one_with_its_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["BENCHMARK", "MEASURES"]
    assert "rpc_echo" in out and "grpc.aio" in out and "_tracing_variants" not in out
    assert main(["bench", "nope"]) == 2
    assert "no benchmark 'nope'; there are: " in capsys.readouterr().err
    assert main(["bench", "rpc_echo", "--help"]) == 0  # the script's own options


def test_registry_listings_align_whatever_the_lengths(capsys: pytest.CaptureFixture[str]) -> None:
    from rpc.registry import ServiceInstance, connect

    url = "memory://cli-tables"
    registry = connect(url)
    try:
        registry.register(ServiceInstance("orders.OrderService", "10.0.0.7:7001"))
        registry.register(ServiceInstance("orders.OrderService", "orders-7.eu-west.internal:17001",
                                          weight=5, metadata={"zone": "a"}))  # fmt: skip
        registry.put_config("governance/orders.OrderService/weights", {"10.0.0.7:7001": 50})
        registry.put_config("a", {"x": 1})
        assert main(["registry", "ls", "orders.OrderService", "--registry", url]) == 0
        header, *rows = capsys.readouterr().out.splitlines()
        assert header.split() == ["ADDRESS", "VERSION", "GROUP", "WEIGHT", "PID", "METADATA"]
        assert len(rows) == 2 and rows[1].endswith("zone=a")
        assert len({row.index(" -  ") for row in rows}) == 1  # the version column lines up
        assert main(["config", "ls", "--registry", url]) == 0
        header, *rows = capsys.readouterr().out.splitlines()
        assert header.split() == ["KEY", "VERSION", "VALUE"]
        assert rows[0].index("{") == rows[1].index("{")  # values line up
    finally:
        registry.close()
