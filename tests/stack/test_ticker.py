"""Slow stack work shows it is alive: a live tqdm line on a terminal, dots in logs."""

from __future__ import annotations

import io

import pytest

from callscope.stack import ticker as ticker_module
from callscope.stack.ticker import Ticker, to_stderr


def test_off_a_terminal_the_report_gets_the_same_text_as_ever() -> None:
    lines: list[str] = []
    t = Ticker(lines.append, "stack: waiting for kafka ")
    t.tick()
    t.tick()
    t.note("stack: kafka ready in 3.2 s")
    t.close()
    assert "".join(lines) == "stack: waiting for kafka ..\nstack: kafka ready in 3.2 s\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_live_line_shows_the_elapsed_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(ticker_module.sys, "stderr", terminal)
    t = Ticker(to_stderr, "stack: fetching kafka 4.4.0 from Maven Central ")
    t.tick()
    t.note("stack: kafka ready in 3.2 s")
    t.close(" done in 1.0 s (90 MiB)\n")
    out = terminal.getvalue()
    assert "stack: fetching kafka 4.4.0 from Maven Central [00:00]" in out  # tqdm's elapsed
    assert "stack: kafka ready in 3.2 s\n" in out
    assert out.rstrip().endswith("from Maven Central done in 1.0 s (90 MiB) [00:00]")
    assert "." * 2 not in out.replace("...", "")  # no hand-drawn dots
