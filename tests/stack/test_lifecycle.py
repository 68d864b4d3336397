"""``Stack`` mechanics on a stand-in service (a Python TCP server): no JVM, a second each.

PID files, idempotent ``up``, stale PID files, busy ports, a crash while starting, leases
between test sessions, and the errors that name a missing Java or Maven.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import pytest

from callscope.stack import Stack, StackError, StackPaths
from callscope.stack.errors import NotReady
from callscope.stack.process import Launch, PidRecord, port_open, start_ticks
from callscope.stack.recipe import Port, Runtime, Service
from callscope.stack.toolchain import find_java, find_maven

SERVER = """
import socket, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
while True:
    conn, _ = sock.accept()
    conn.sendall(b"fake")
    conn.close()
"""


class _Prefetched:
    """Stands in for an ``Artifact``: nothing to fetch."""

    version = "0.0"

    def home(self, dist: Path) -> Path:
        return dist

    def is_fetched(self, dist: Path) -> bool:
        return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fake_service(script: str = SERVER) -> type[Service]:
    port = _free_port()

    class Fake(Service):
        name = "fake"
        artifact = _Prefetched()  # type: ignore[assignment]
        heap = "-"
        ports: ClassVar = (Port(port, "client"),)
        processes = ("server",)
        stop_grace_s = 5.0

        def prepare(self, rt: Runtime) -> list[Launch]:
            return [Launch("server", [sys.executable, "-c", script, str(port)], cwd=rt.run_dir)]

        def probe(self) -> None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    if sock.recv(4) == b"fake":
                        return
            except OSError:
                pass
            raise NotReady("no banner")

        def env(self) -> dict[str, str]:
            return {"FAKE": f"127.0.0.1:{port}"}

    return Fake


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    lines: list[str] = []
    return Stack(StackPaths(tmp_path), report=lines.append, timeout_s=15, catalog={})


def _with(stack: Stack, cls: type[Service]) -> Stack:
    stack.catalog = {"fake": cls}
    return stack


def test_up_is_idempotent_and_down_leaves_no_process(stack: Stack) -> None:
    stack = _with(stack, fake_service())
    (first,) = stack.up()
    assert first.ok and first.started
    (status,) = stack.status()
    assert status.state == "running"
    pid = status.processes[0].pid
    assert pid and status.processes[0].rss_bytes > 0
    (again,) = stack.up()
    assert again.ok and not again.started
    assert stack.status()[0].processes[0].pid == pid
    assert stack.down() == ["fake"]
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert stack.status()[0].state == "stopped"
    assert not (stack.paths.service_dir("fake") / "server.pid").exists()


def test_stale_pid_file_is_recognised(stack: Stack) -> None:
    stack = _with(stack, fake_service())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid_file = stack.paths.service_dir("fake") / "server.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f'{{"pid": {dead.stdout.strip()}, "start_ticks": 1, "name": "server"}}')
    (status,) = stack.status()
    assert status.state == "stopped" and "stale" in status.detail
    (result,) = stack.up()
    assert result.ok and result.started
    stack.down()


def test_busy_port_is_named(stack: Stack) -> None:
    cls = fake_service()
    stack = _with(stack, cls)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cls.ports[0].number))
        squatter.listen()
        with pytest.raises(StackError) as err:
            stack.up()
    assert err.value.code == "PORT_BUSY"
    assert str(cls.ports[0].number) in err.value.message


def test_crash_while_starting_shows_the_log(stack: Stack) -> None:
    stack = _with(stack, fake_service("import sys; print('boom: bad config'); sys.exit(3)"))
    with pytest.raises(StackError) as err:
        stack.up()
    assert err.value.code == "START_FAILED"
    assert "boom: bad config" in err.value.log_tail


def test_a_session_stops_what_it_started_unless_another_still_uses_it(stack: Stack) -> None:
    cls = fake_service()
    stack = _with(stack, cls)
    (result,) = stack.use(["fake"])
    assert result.started
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leases = stack.paths.service_dir("fake") / "leases"
        (leases / f"{other.pid}-{start_ticks(other.pid)}").touch()
        assert stack.release(["fake"]) == []  # the other session still holds a lease
        assert port_open(cls.ports[0].number)
    finally:
        other.kill()
        other.wait()
    stack.use(["fake"])
    assert stack.release(["fake"]) == ["fake"]  # the other holder is gone: last one out stops it


def test_cli_up_pins_a_service_against_sessions(stack: Stack) -> None:
    stack = _with(stack, fake_service())
    stack.use(["fake"])
    stack.up(["fake"], pin=True)
    assert stack.release(["fake"]) == []
    assert stack.status()[0].state == "running"
    stack.down()


def test_missing_java_and_maven_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    find_java.cache_clear()
    try:
        with pytest.raises(StackError) as err:
            find_java()
        assert err.value.code == "JAVA_MISSING" and "openjdk" in err.value.message
    finally:
        find_java.cache_clear()
    with pytest.raises(StackError) as err:
        find_maven("kafka 4.4.0")
    assert err.value.code == "MAVEN_MISSING" and "kafka 4.4.0" in err.value.message


def test_pid_record_survives_pid_reuse_check() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        record = PidRecord(proc.pid, start_ticks(proc.pid), "x")
        assert record.alive()
        assert not PidRecord(proc.pid, record.start_ticks + 1, "x").alive()  # another process
    finally:
        proc.kill()
        proc.wait()
    time.sleep(0.05)
    assert not record.alive()
