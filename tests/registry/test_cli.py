"""``callscope config`` and ``callscope registry ls`` against a real registry process."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rpc
from rpc.registry import ServiceInstance, connect

from .conftest import ROOT, EmbeddedBackend, Process, free_port


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callscope", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_config_commands_validate_before_writing(tmp_path):
    server = EmbeddedBackend(tmp_path)
    try:
        url = ["--registry", f"callscope://127.0.0.1:{server.port}"]
        admin = [*url, "--token", "admin-token"]
        key = "governance/reg.Echo/weights"
        bad = cli("config", "put", key, '{"127.0.0.1:1": -1}', *admin)
        assert bad.returncode == 1 and "BAD_REQUEST" in bad.stderr
        assert cli("config", "put", key, "{not json", *admin).returncode == 2
        denied = cli("config", "put", key, '{"127.0.0.1:1": 5}', *url, "--token", "reader-token")
        assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr
        anonymous = cli("config", "put", key, '{"127.0.0.1:1": 5}', *url)
        assert anonymous.returncode == 1 and "UNAUTHENTICATED" in anonymous.stderr
        ok = cli("config", "put", key, '{"127.0.0.1:1": 5}', "--expect", "0", *admin)
        assert ok.returncode == 0 and "version 1" in ok.stdout
        stale = cli("config", "put", key, '{"127.0.0.1:1": 6}', "--expect", "0", *admin)
        assert stale.returncode == 1 and "CONFLICT" in stale.stderr
        assert '"version": 1' in cli("config", "get", key, *admin).stdout
        assert key in cli("config", "ls", "governance/", *admin).stdout
        with connect(server.url("provider")) as provider:
            provider.register(ServiceInstance("reg.Echo", "127.0.0.1:7001", metadata={"zone": "a"}))
            assert cli("registry", "ls", *admin).stdout.split() == ["reg.Echo"]
            listing = cli("registry", "ls", "reg.Echo", *admin).stdout
            assert "127.0.0.1:7001" in listing and "zone=a" in listing
        assert cli("config", "rm", key, "--expect", "1", *admin).returncode == 0
        assert cli("config", "get", key, *admin).returncode == 1
    finally:
        server.stop()


def test_quotas_are_set_on_the_command_line(tmp_path):
    bad = cli("registry", "--db", str(tmp_path / "r.db"), "--max-sessions-per-credential", "0")
    assert bad.returncode == 2 and "sessions_per_credential must be a positive" in bad.stderr
    port = free_port()
    server = Process(
        [sys.executable, "-m", "callscope", "registry", "--db", str(tmp_path / "r.db"),
         "--port", str(port), "--max-sessions-per-credential", "1"],
        ready="callscope registry on",
    )  # fmt: skip
    first = second = None
    try:
        first = connect(f"callscope://127.0.0.1:{port}")
        first.register(ServiceInstance("q.Svc", "127.0.0.1:7001"))
        second = connect(f"callscope://127.0.0.1:{port}")
        with pytest.raises(rpc.ResourceExhaustedError, match="per-credential"):
            second.register(ServiceInstance("q.Svc", "127.0.0.1:7002"))
    finally:
        for registry in (first, second):
            if registry is not None:
                registry.close()
        server.stop()
