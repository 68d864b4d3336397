"""``callscope dashboard`` serves on 127.0.0.1 and refuses a bad port with one line."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from callscope.cli import main


def test_the_command_serves_on_loopback_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'spans.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "callscope", "dashboard", "--store", url, "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "callscope dashboard:" not in line and time.monotonic() < deadline:
            line = server.stderr.readline()
            assert line or server.poll() is None, "the dashboard exited early"
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        page = requests.get(found.group(0), timeout=30)
        assert page.status_code == 200 and "callscope" in page.text
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()


def test_a_bad_port_is_one_line(capsys) -> None:
    assert main(["dashboard", "--port", "70000"]) == 2
    assert "--port is within 0..65535" in capsys.readouterr().err
