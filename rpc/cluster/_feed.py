"""What a consumer learns from outside while it runs, fed into its configuration and weights.

* the provider level: settings providers state in their metadata (``governance``),
  followed through the directory;
* the registry's documents (when the client has a registry): ``governance/<service>/
  weights`` into the weight table, ``.../routing`` and ``.../cluster`` as the consumer
  level's registry layer, ``governance/_global/cluster`` as the global level.

A bad document is logged and ignored (the registry refuses them before storing, so it
comes only from an older writer); the last good one stands.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .._directory import Directory, Provider
from .._errors import RpcError
from ..balance import WeightsDocument, WeightTable, weights_key
from ..config import GLOBAL_KEY, LayeredConfig, routing_rules

__all__ = ["GovernanceFeed"]

log = logging.getLogger("callscope.rpc")


class GovernanceFeed:
    """Follows each service once, on its first call; :meth:`close` stops every watch."""

    def __init__(
        self,
        directory: Directory,
        registry: Any,
        config: LayeredConfig,
        weights: WeightTable,
        counters: Counter[tuple[str, str]],
    ) -> None:
        self.directory = directory
        self.registry = registry
        self.config = config
        self.weights = weights
        self.counters = counters
        self.on_weights: Callable[[str], None] | None = None  # told of each applied document
        self.masks: Any = None  # an rpc.degrade.MaskTable fed from governance/<service>/mask
        self._followed: dict[str, Any] = {}  # service → the providers' stated settings
        self._documents: dict[str, dict[str, Any]] = {}  # service → its registry documents
        self._stops: list[Callable[[], None]] = []
        self._closed = False

    def follow(self, service: str) -> None:
        if service in self._followed:
            return
        self._followed[service] = None
        self._follow_providers(service)
        if self.registry is not None:
            self._watch(service)

    def _follow_providers(self, service: str) -> None:
        def listed(providers: Sequence[Provider]) -> None:
            stated = next((p.metadata.get("governance") for p in providers if p.metadata), None)
            if stated == self._followed.get(service):
                return
            self._followed[service] = stated
            try:
                self.config.put("provider", service, stated or None, source="registry")
            except RpcError as err:
                log.warning("callscope: ignoring %s providers' settings: %s", service, err)

        listed(self.directory.providers(service))
        self._stops.append(self.directory.subscribe(service, listed))

    def _watch(self, service: str) -> None:
        documents = self._documents.setdefault(service, {})

        def weights(document: Any) -> None:
            if document is None:
                self.weights.set_document(service, None)
                return
            try:
                parsed = WeightsDocument.parse(document.value, document.version)
            except RpcError as err:
                log.warning("callscope: ignoring %s: %s", weights_key(service), err)
                return
            self.weights.set_document(service, parsed)
            self.counters[(service, "weights.applied")] += 1
            if self.on_weights is not None:
                self.on_weights(service)

        def settings(name: str) -> Callable[[Any], None]:
            def pushed(document: Any) -> None:
                value = None if document is None else document.value
                if name == "routing" and value is not None:
                    value = {"routers": routing_rules(value)}
                documents[name] = value or {}
                layer = {**documents.get("cluster", {}), **documents.get("routing", {})}
                try:
                    self.config.put("consumer", service, layer or None, source="registry")
                except RpcError as err:
                    log.warning("callscope: ignoring governance/%s/%s: %s", service, name, err)
                    return
                self.counters[(service, f"{name}.applied")] += 1

            return pushed

        watches = [
            (weights_key(service), weights),
            (f"governance/{service}/routing", settings("routing")),
            (f"governance/{service}/cluster", settings("cluster")),
        ]
        if self.masks is not None:
            watches.append((f"governance/{service}/mask", self.masks.listener(service)))
        self._in_background(watches)

    def watch_global(self) -> None:
        """Follow ``governance/_global/cluster``: every service's weakest settings layer."""

        def pushed(document: Any) -> None:
            try:
                value = None if document is None else document.value
                self.config.put("global", "*", value or None, source="registry")
            except RpcError as err:
                log.warning("callscope: ignoring %s: %s", GLOBAL_KEY, err)

        if self.registry is not None:
            self._in_background([(GLOBAL_KEY, pushed)])

    def _in_background(self, watches: list[tuple[str, Any]]) -> None:
        """Start the watches off the event loop (a registry call may block)."""

        def watch() -> None:
            for key, listener in watches:
                try:
                    stop = self.registry.watch_config(key, listener)
                except RpcError as err:
                    log.warning("callscope: cannot watch %s: %s", key, err)
                    continue
                if self._closed:  # the client closed while this watch was being set up
                    stop()
                else:
                    self._stops.append(stop)

        try:
            asyncio.get_running_loop().run_in_executor(None, watch)
        except RuntimeError:  # no loop: a blocking caller, watch here
            watch()

    def close(self) -> None:
        self._closed = True
        stops, self._stops = self._stops, []
        for stop in stops:
            stop()
