"""The embedded registry over TLS: a `callscope registry --tls-cert/--tls-key` process,
clients that trust its CA through the URL, and clear failures for those that do not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trustme

import rpc
from rpc.registry import connect

from .conftest import ROOT, Process, _env, free_port


@pytest.fixture
def tls_registry(tmp_path: Path) -> tuple[int, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    server = Process(
        [sys.executable, "-m", "callscope", "registry", "--db", str(tmp_path / "r.db"),
         "--port", str(port), "--tls-cert", str(cert_file), "--tls-key", str(key_file)],
        ready="callscope registry on",
    )  # fmt: skip
    yield port, ca_file
    server.stop()


def test_a_client_trusting_the_ca_uses_the_registry_over_tls(tls_registry) -> None:
    port, ca_file = tls_registry
    registry = connect(f"callscope://127.0.0.1:{port}?ca={ca_file}&timeout=10")
    try:
        registry.put_config("app/limits", {"qps": 10})
        assert registry.get_config("app/limits").value == {"qps": 10}
    finally:
        registry.close()
    done = subprocess.run(
        [sys.executable, "-m", "callscope", "config", "get", "app/limits",
         "--registry", f"callscope://127.0.0.1:{port}?ca={ca_file}&timeout=10"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"qps": 10' in done.stdout or '"qps":10' in done.stdout


def test_clients_that_cannot_check_the_certificate_are_refused(tls_registry) -> None:
    port, _ = tls_registry
    # The system CAs do not know this test CA; plaintext gets no answer a client accepts.
    for url in (f"callscope://127.0.0.1:{port}?tls=1&timeout=2",
                f"callscope://127.0.0.1:{port}?timeout=2"):  # fmt: skip
        registry = connect(url)
        try:
            with pytest.raises(rpc.RpcError):
                registry.get_config("app/limits")
        finally:
            registry.close()


def test_a_missing_ca_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot load the registry CA file"):
        connect(f"callscope://127.0.0.1:1?ca={tmp_path / 'nope.pem'}")


def test_the_server_needs_both_cert_and_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callscope", "registry", "--db", str(tmp_path / "r.db"),
         "--port", str(free_port()), "--tls-cert", str(tmp_path / "cert.pem")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "--tls-cert and --tls-key go together" in done.stderr
