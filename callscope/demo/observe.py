"""What the demo reads back while it runs: spans and edges from the store, weights from the
registry -- the same places a user's tools read, so the progress line shows the real loop.

Edges are the (caller, callee) service pairs of stored SERVER spans (a SERVER span names
its caller in ``peer_service``); the pipeline's dependency graph says the same over a
window once its jobs run. Weights are the ``governance/<service>/weights`` documents: the
demo only reads them and counts their changes; it never writes one.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .topology import SERVICES

__all__ = ["StoreWatch", "WeightsWatch", "instance_shares"]

EDGE_WINDOW_US = 30_000_000


def _now_us() -> int:
    return int(time.time() * 1_000_000)


class StoreWatch:
    """Span count and the service edges seen so far, read from the span store."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.spans = 0
        self.edges: set[tuple[str, str]] = set()
        self._store = None
        self._scanned_to_us = 0

    def _open(self):  # type: ignore[no-untyped-def]
        from storage import StorageError, open_span_store

        if self._store is None:
            try:
                self._store = open_span_store(self.store_url, read_only=True)
            except StorageError:
                return None  # the collector has not created it yet
        return self._store

    def poll(self) -> None:
        from storage import StorageError

        store = self._open()
        if store is None:
            return
        try:
            store.refresh()
            self.spans = store.count()
            now = _now_us()
            start = max(self._scanned_to_us - EDGE_WINDOW_US, now - 10 * EDGE_WINDOW_US)
            for span in store.scan_spans(start, now + 1):
                if span.kind == "SERVER" and span.peer_service:
                    self.edges.add((span.peer_service, span.service))
            self._scanned_to_us = now
        except StorageError:
            return  # a busy store: the next poll tries again

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def instance_shares(store_url: str, service: str, start_us: int, end_us: int) -> Counter[str]:
    """SERVER spans of ``service`` per instance (host:port) that started in the window."""
    from storage import open_span_store

    served: Counter[str] = Counter()
    with open_span_store(store_url, read_only=True) as store:
        store.refresh()
        for span in store.scan_spans(start_us, end_us):
            if span.kind == "SERVER" and span.service == service:
                served[span.instance] += 1
    return served


@dataclass
class WeightsWatch:
    """The weights documents of the services with several instances, as the registry has them."""

    registry_url: str
    versions: dict[str, int] = field(default_factory=dict)
    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    changes: int = 0
    _registry: object = None

    def poll(self) -> None:
        import rpc
        from rpc.balance import WeightsDocument, weights_key
        from rpc.registry import connect

        try:
            if self._registry is None:
                self._registry = connect(self.registry_url)
            for spec in SERVICES.values():
                if spec.instances < 2:
                    continue
                doc = self._registry.get_config(weights_key(spec.rpc_name))  # type: ignore[attr-defined]
                if doc is None or doc.version == self.versions.get(spec.name):
                    continue
                self.changes += 1  # a new version: written while the demo ran (or before)
                self.versions[spec.name] = doc.version
                parsed = WeightsDocument.parse(doc.value, doc.version)
                self.weights[spec.name] = {a: w.weight for a, w in parsed.weights.items()}
        except rpc.RpcError:
            return  # the registry is restarting or gone: the next poll tries again

    def describe(self) -> str:
        if not self.weights:
            return "none"
        return "; ".join(
            f"{name} " + " ".join(f"{a.rsplit(':', 1)[-1]}={w}" for a, w in sorted(ws.items()))
            for name, ws in sorted(self.weights.items())
        )

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()  # type: ignore[attr-defined]
            self._registry = None
