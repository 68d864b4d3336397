"""The demo's closing words: the newest trace as a tree, and the summary as one JSON line.

The summary's fields: ``calls``, ``errors`` (and ``error_codes``), ``spans_stored``,
``edges`` found in the stored spans (``caller->callee``) and ``missing_edges`` of the
topology, ``weight_changes`` seen in the registry and the ``weights`` last read, which
``weight_job`` computed them (and the windows it ran, the edges of its dependency graph),
the faults applied, and for a slowed instance its share of its service's calls before
the slowdown and over the run's last 20 s.
"""

from __future__ import annotations

import json
from typing import Any

from .feedback import weight_job_status
from .observe import instance_shares
from .supervisor import SETTLE_S, Run, Supervisor
from .topology import EXPECTED_EDGES, LOADGEN, SERVICES

__all__ = ["print_newest_trace", "summarize"]

WARMUP_US = 5_000_000  # the first seconds: connections and JITs warming up
AFTER_US = 20_000_000
""""After" a slowdown is the run's last 20 s (or less: from the fault plus a settling
time): by then a window or two of feedback has had its effect."""


def summarize(supervisor: Supervisor) -> dict[str, Any]:
    run = supervisor.run
    load = run.load
    edges = supervisor.store.edges
    weights = supervisor.weights
    summary: dict[str, Any] = {
        "calls": load.get("calls", 0),
        "errors": load.get("errors", 0),
        "error_codes": load.get("codes", {}),
        "spans_stored": supervisor.store.spans,
        "edges_found": len(edges),
        "edges": sorted(f"{a}->{b}" for a, b in edges),
        "missing_edges": sorted(f"{a}->{b}" for a, b in EXPECTED_EDGES - edges),
        "weight_changes": weights.changes if weights else 0,
        "weights": weights.weights if weights else {},
        "weight_job": _weight_job(supervisor),
        "pipeline_windows": run.feedback.get("windows", 0),
        "pipeline_edges": run.feedback.get("edges", []),
        "alarms": run.feedback.get("alarms", 0),
        "feedback_error": run.feedback_error,
        "faults": [{"at_s": round(at, 1), "fault": f.describe()} for at, f in run.applied],
        "balancer": supervisor.options.balancer,
        "stack": supervisor.backends.kind,
        "dashboard": run.dashboard_url,
    }
    summary.update(_slow_share(supervisor, run))
    return summary


def _weight_job(supervisor: Supervisor) -> str:
    running = supervisor.options.feedback and supervisor.run.feedback_error is None
    if supervisor.feedback is None:
        return weight_job_status(running)
    return supervisor.feedback.status(running)


def _slow_share(supervisor: Supervisor, run: Run) -> dict[str, Any]:
    slowed = [(at, f) for at, f in run.applied if f.kind == "slow"]
    if not slowed:
        return {"slow_instance": None}
    at_s, fault = slowed[0]
    address = run.addresses.get(fault.instance.label, "")
    fault_us = run.load_started_us + int(at_s * 1_000_000)
    settled_us = fault_us + int(SETTLE_S * 1_000_000)
    windows = {
        "before": (run.load_started_us + WARMUP_US, fault_us),
        "after": (max(settled_us, run.ended_us - AFTER_US), run.ended_us),
    }
    out: dict[str, Any] = {"slow_instance": fault.instance.label, "slow_address": address}
    for name, (start, end) in windows.items():
        served = instance_shares(supervisor.backends.store_url, fault.instance.service, start, end)
        total = sum(served.values())
        out[f"slow_share_{name}"] = round(served[address] / total, 3) if total else None
        out[f"{fault.instance.service}_calls_{name}"] = total
    return out


def print_newest_trace(store_url: str) -> None:
    """The newest complete checkout (every span OK), else the newest one, as a tree."""
    from storage import StorageError, TraceQuery, open_span_store, tree_lines

    operation = f"{SERVICES['gateway'].rpc_name}/checkout"
    try:
        with open_span_store(store_url, read_only=True) as store:
            traces = store.find_traces(TraceQuery(LOADGEN, operation=operation, limit=20))
    except StorageError as err:
        print(f"(no trace to show: {err})")
        return
    if not traces:
        print("(no trace was stored)")
        return
    trace = next((t for t in traces if not t.has_error and len(t.spans) >= 10), traces[0])
    print(f"\nnewest trace {trace.trace_id}, {trace.duration_us / 1000:.3f} ms:")
    for line in tree_lines(trace):
        print(f"  {line}")


def print_summary(summary: dict[str, Any]) -> None:
    """The last line of the output: the summary as one JSON object."""
    print(json.dumps(summary, sort_keys=False), flush=True)
