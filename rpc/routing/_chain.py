"""The routers of one (service, method), run in priority order, results cached per method."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._directory import Provider
from .._errors import ErrorCode, RpcError
from .._invocation import Invocation
from ._facts import call_facts
from ._routers import Rule, build_rule

__all__ = ["NO_PROVIDER", "RouterChain"]

NO_PROVIDER = ErrorCode.NO_PROVIDER
_MAX_CACHED = 256


class RouterChain:
    """Rules in priority order; empty results skip a rule unless it is forced."""

    def __init__(
        self, specs: Sequence[Mapping[str, Any] | str], consumer: Mapping[str, Any]
    ) -> None:
        rules = [build_rule(spec) for spec in specs]
        self.rules: list[Rule] = sorted((r for r in rules if r.enabled), key=lambda r: -r.priority)
        self.consumer = dict(consumer)
        self.per_call = any(r.per_call for r in self.rules)
        self._cache: dict[tuple[Any, ...], tuple[Sequence[Provider], Sequence[Provider]]] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def route(self, providers: Sequence[Provider], inv: Invocation) -> Sequence[Provider]:
        if not self.per_call:
            cached = self._cache.get((inv.method, inv.version, inv.group))
            if cached is not None and cached[0] is providers:
                return cached[1]
        call = call_facts(inv, self.consumer)
        routed = providers
        for rule in self.rules:
            narrowed = rule.route(routed, inv, call)
            if narrowed:
                routed = narrowed
            elif rule.force:
                raise RpcError(
                    f"no provider of {inv.service!r} passes routing rule {rule.name!r}"
                    f" ({rule.kind}, forced)",
                    code=NO_PROVIDER,
                )
        if not self.per_call:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[(inv.method, inv.version, inv.group)] = (providers, routed)
        return routed
