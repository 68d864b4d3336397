"""Registry notification latency and registration throughput: embedded vs ZooKeeper.

For each backend: a provider client registers instances one at a time and a
subscriber (another client) is timed from ``register()`` until its listener sees
the new instance (p50/p99); then 1,000 instances are registered back to back.
The embedded registry runs as a ``callscope registry`` process; ZooKeeper is the
``callscope stack`` one (started if needed). The last line is one JSON object.

    python benchmarks/registry_notify.py [--samples 200] [--instances 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _registry_process import registry_process  # noqa: E402

from rpc.registry import ServiceInstance, connect  # noqa: E402


def measure(url: str, samples: int, instances: int) -> dict[str, float]:
    provider, subscriber = connect(url), connect(url)
    try:
        seen: set[str] = set()
        cond = threading.Condition()

        def pushed(found: list[ServiceInstance]) -> None:
            with cond:
                seen.clear()
                seen.update(i.address for i in found)
                cond.notify_all()

        subscriber.subscribe("bench.Notify", pushed)
        latencies = []
        for n in range(samples):
            address = f"127.0.0.1:{10000 + n}"
            start = time.perf_counter()
            provider.register(ServiceInstance("bench.Notify", address))
            with cond:
                if not cond.wait_for(lambda a=address: a in seen, timeout=10):
                    raise RuntimeError(f"no notification for {address} within 10 s")
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        start = time.perf_counter()
        for n in range(instances):
            provider.register(ServiceInstance("bench.Bulk", f"127.0.0.1:{20000 + n}"))
        bulk = time.perf_counter() - start
        listed = len(subscriber.lookup("bench.Bulk"))
        if listed != instances:
            raise RuntimeError(f"registered {instances} but {listed} are listed")
        return {
            "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "bulk": bulk,
        }
    finally:
        provider.close()
        subscriber.close()


def embedded(samples: int, instances: int) -> dict[str, float]:
    with registry_process() as (url, _):
        return measure(url, samples, instances)


def zookeeper(samples: int, instances: int) -> dict[str, float]:
    hosts = os.environ.get("CALLSCOPE_ZOOKEEPER")
    if not hosts:
        up = [sys.executable, "-m", "callscope", "stack", "up", "zookeeper"]
        subprocess.run(up, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=300)
        hosts = "127.0.0.1:2181"
    root = f"/callscope-bench-{uuid.uuid4().hex[:8]}"
    try:
        return measure(f"zookeeper://{hosts}{root}", samples, instances)
    finally:
        from kazoo.client import KazooClient

        client = KazooClient(hosts=hosts)
        client.start(timeout=10)
        client.delete(root, recursive=True)
        client.stop()
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="notifications timed")
    parser.add_argument("--instances", type=int, default=1000, help="bulk registrations")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for name, run in (("embedded", embedded), ("zookeeper", zookeeper)):
        found = run(args.samples, args.instances)
        print(f"{name:9}  notify p50 {found['p50']:7.2f} ms  p99 {found['p99']:7.2f} ms  "
              f"register {args.instances} in {found['bulk']:6.2f} s", flush=True)  # fmt: skip
        results[f"notify_p50_ms_{name}"] = round(found["p50"], 3)
        results[f"notify_p99_ms_{name}"] = round(found["p99"], 3)
        results[f"register_{args.instances}_s_{name}"] = round(found["bulk"], 3)
    n = args.instances
    results["ratio_notify_p99_embedded_vs_zookeeper"] = round(
        results["notify_p99_ms_embedded"] / results["notify_p99_ms_zookeeper"], 3
    )
    results[f"ratio_register_{n}_embedded_vs_zookeeper"] = round(
        results[f"register_{n}_s_embedded"] / results[f"register_{n}_s_zookeeper"], 3
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
