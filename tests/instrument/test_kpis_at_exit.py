"""The last KPI window of a traced process reaches the store, whichever role it played.

Real processes under ``callscope run`` on the embedded path: a provider stopped by SIGTERM
(as a supervisor stops it), a consumer that makes its calls and exits, both spooling;
then the collector files the spool into SQLite and ``callscope kpis`` reads it back by
application name and by RPC service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from callscope.cli import main
from collector import Collector, CollectorConfig
from instrument.model import KpiSample
from storage import open_analytics_store

from .conftest import ROOT
from .processes import first_line, running

APP = Path(__file__).resolve().parent / "apps" / "shop.py"
CALLS = 25


def _run(name: str, spool: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "callscope", "run", "--service-name", name,
            "--spool-dir", str(spool), "--", sys.executable, str(APP), *args]  # fmt: skip


def _stored(url: str, timeout_s: float = 60.0) -> list[KpiSample]:
    """The KPI samples of shop.Till once both roles' calls are all counted (or the deadline)."""
    deadline = time.monotonic() + timeout_s
    with open_analytics_store(url) as analytics:
        while True:
            samples = analytics.kpis("shop.Till", 0, 2**62)
            counts = {role: sum(s.count for s in samples if s.role == role)
                      for role in ("provider", "consumer")}  # fmt: skip
            if counts == {"provider": CALLS, "consumer": CALLS} or time.monotonic() > deadline:
                return samples
            time.sleep(0.2)


def test_both_roles_last_kpi_windows_are_stored(tmp_path: Path, capsys) -> None:
    spool = tmp_path / "spool"
    # one KPI window per process, the one it closes at exit: what this test is about
    env = {**os.environ, "CALLSCOPE_LIBRARIES": "none", "PYTHONUNBUFFERED": "1",
           "CALLSCOPE_KPI_INTERVAL_S": "600"}  # fmt: skip
    env.pop("CALLSCOPE_KAFKA_BOOTSTRAP", None)
    with running(_run("shop-provider", spool, "provider"), env=env, stderr=None) as provider:
        address = first_line(provider)
        assert address, "the provider did not start"
        consumer = subprocess.run(
            _run("shop-consumer", spool, "consumer", address, str(CALLS)),
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=90,
        )  # fmt: skip
        assert consumer.returncode == 0, consumer.stderr
        provider.send_signal(signal.SIGTERM)  # what a supervisor does
        assert provider.wait(timeout=30) == 0
    url = f"sqlite://{tmp_path / 'store.db'}"
    config = CollectorConfig(store_url=url, spool_dir=str(spool), http_port=None, otlp=False,
                             dlq_file=str(tmp_path / "dlq.jsonl"))  # fmt: skip
    collector = Collector(config)
    collector.start()
    try:
        samples = _stored(url)
    finally:
        collector.stop()
    by_role = {(s.app, s.role): s.count for s in samples}
    assert by_role == {("shop-provider", "provider"): CALLS, ("shop-consumer", "consumer"): CALLS}

    # `kpis --service` takes the application name, as `traces --service` does, and says so
    assert main(["kpis", "--service", "shop-consumer", "--store", url, "--since", "1h",
                 "--json"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert "the application 'shop-consumer'" in err
    roles = {json.loads(line)["role"] for line in out.splitlines()}
    assert roles == {"consumer", "process"}  # its calls out, and the process itself
    assert main(["kpis", "--service", "shop.Till", "--store", url, "--since", "1h"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("KPIs of the RPC service 'shop.Till'")
    assert sorted(line.split()[5] for line in out[2:]) == ["consumer", "provider"]
