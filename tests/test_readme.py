"""Every ```python block of README.md runs as pasted into a file: the README never lies.

Each block runs in its own interpreter, in an empty directory, within a time bound. A block
preceded by ``<!-- snippet: serves -->`` is a server that runs until stopped: the blocks
after it in the same ``##`` section run while it serves (it is started first, and
stopped with SIGTERM after, which must end it cleanly). The port a serving block names
(the number after ``127.0.0.1:`` or ``"127.0.0.1",``) is replaced, wherever it follows
``127.0.0.1`` in that section, by a free ephemeral port, so a run never collides with
anything else on the machine.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SERVES = "<!-- snippet: serves -->"
RUN_TIMEOUT_S = 300  # a Spark snippet starts a JVM: minutes on a busy 2-core CI box
_FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
_PORT = re.compile(r"127\.0\.0\.1(?::|\",\s*)(\d{2,5})\b")


@dataclass
class Snippet:
    line: int
    code: str
    section: str
    serves: bool
    servers: list[Snippet] = field(default_factory=list)  # serving blocks before it

    @property
    def id(self) -> str:
        first = next((ln for ln in self.code.splitlines() if ln.strip()), "")
        return f"L{self.line}:{first[:40]}"


def snippets(text: str) -> list[Snippet]:
    found: list[Snippet] = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        heading = re.findall(r"^## (.+)$", before, flags=re.MULTILINE)
        section = heading[-1] if heading else ""
        serves = before.rstrip().endswith(SERVES)
        line = before.count("\n") + 1
        servers = [s for s in found if s.serves and s.section == section]
        found.append(Snippet(line, match.group(1), section, serves, servers))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_ports(code: str, ports: dict[str, int]) -> str:
    """``code`` with each serving port, where it follows ``127.0.0.1``, made ``ports[it]``."""

    def swap(match: re.Match[str]) -> str:
        port = match.group(1)
        return match.group(0)[: -len(port)] + str(ports.get(port, port))

    return _PORT.sub(swap, code)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSCOPE_")}
    return {**env, "CALLSCOPE_SPOOL_DIR": str(tmp_path / "spool"), "PYTHONUNBUFFERED": "1"}


def _wait_listening(port: int, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the serving snippet exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the serving snippet never listened on {port}")


ALL = snippets(README.read_text())


def test_the_readme_has_snippets_and_each_server_has_a_port() -> None:
    assert len(ALL) >= 4
    for s in ALL:
        assert not s.serves or _PORT.search(s.code), f"README line {s.line}: which port?"


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
@pytest.mark.parametrize("snippet", [s for s in ALL if not s.serves], ids=lambda s: s.id)
def test_snippet_runs(snippet: Snippet, tmp_path: Path) -> None:
    ports = {m.group(1): free_port() for s in snippet.servers for m in [_PORT.search(s.code)] if m}
    env = _env(tmp_path)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        for i, server in enumerate(snippet.servers):
            path = tmp_path / f"server_{i}.py"
            path.write_text(with_ports(server.code, ports))
            log = (tmp_path / f"server_{i}.log").open("w")  # a file: a chatty server never blocks
            servers.append(subprocess.Popen([sys.executable, str(path)], cwd=tmp_path, env=env,
                                            stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
            log.close()
            match = _PORT.search(server.code)
            assert match is not None
            _wait_listening(ports[match.group(1)], servers[-1], time.monotonic() + 60)
        path = tmp_path / "snippet.py"
        path.write_text(with_ports(snippet.code, ports))
        done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S)  # fmt: skip
        assert done.returncode == 0, (
            f"README.md line {snippet.line} failed:\n{done.stdout}\n{done.stderr}"
        )
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for i, server in enumerate(servers):
            server.wait(timeout=30)
            out = (tmp_path / f"server_{i}.log").read_text()
            assert server.returncode == 0, f"a serving snippet did not stop cleanly:\n{out}"


def test_every_serving_snippet_has_a_snippet_that_calls_it() -> None:
    for s in ALL:
        if s.serves:
            assert any(s in other.servers for other in ALL), f"README line {s.line}: unused"


def test_the_configuration_reference_names_every_variable() -> None:
    from callscope_contract import environment

    text = README.read_text()
    reference = text.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in environment.__all__ if f"`{name}`" not in reference]
    assert not missing, f"README's configuration reference lacks {missing}"


def test_the_architecture_picture_shows_every_package_and_is_linked() -> None:
    root = README.parent
    floors = ["callscope", "dashboard", "pipeline", "collector", "storage", "instrument",
              "rpc", "callscope_contract"]  # fmt: skip
    picture = (root / "docs" / "architecture.svg").read_text()
    stale = [p for p in floors if (root / p / "__init__.py").is_file() and f">{p}/" not in picture]
    assert not stale, f"docs/architecture.svg lacks {stale}: run python docs/draw_architecture.py"
    assert "](docs/architecture.svg)" in README.read_text()
    assert "](docs/architecture.md)" in README.read_text()
    assert "../shared" not in README.read_text()
