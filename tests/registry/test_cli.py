"""``callscope config`` and ``callscope registry ls`` against a real registry process."""

from __future__ import annotations

import subprocess
import sys

from rpc.registry import ServiceInstance, connect

from .conftest import ROOT, EmbeddedBackend


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
