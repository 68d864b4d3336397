"""A plain ``rpc.Server`` says where it listens and logs a handler's exception with the
caller's trace id: what an operator reads first when a call fails."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import rpc

PROVIDER = textwrap.dedent(
    """
    import rpc

    @rpc.service("logs.Faulty")
    class Faulty:
        def divide(self, a: int, b: int) -> float:
            return a / b

    server = rpc.Server("127.0.0.1", 0)
    server.export(Faulty())
    server.run(ready=lambda address: print(address, flush=True))
    """
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_plain_server_logs_its_address_and_a_handlers_exception_with_the_trace_id() -> None:
    provider = subprocess.Popen(
        [sys.executable, "-c", PROVIDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert provider.stdout is not None
        address = provider.stdout.readline().strip()
        assert address, provider.stderr.read() if provider.stderr else ""
        with rpc.Client([address], timeout=10.0) as client:
            parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
            try:
                client.generic("logs.Faulty", "divide", 1, 0, attachments={"traceparent": parent})
            except rpc.RpcError as err:
                assert err.code == "INTERNAL"
            else:
                raise AssertionError("1 / 0 succeeded")
    finally:
        provider.send_signal(signal.SIGTERM)
        _, err = provider.communicate(timeout=30)
    assert provider.returncode == 0, err
    assert f"listening on {address}" in err
    assert f"logs.Faulty/divide raised (trace {TRACE_ID})" in err
    assert "ZeroDivisionError: division by zero" in err  # the traceback, not only a line
