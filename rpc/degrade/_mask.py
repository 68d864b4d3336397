"""Mask degradation: a registry document switches a service, or one method, to a fallback.

``governance/<service>/mask`` holds a fallback for the whole service and/or its
methods (see :mod:`rpc.degrade._rules` for the forms)::

    {"action": "null"}                                      every method returns None
    {"methods": {"get": {"action": "throw", "code": "BUSY"}}}   only ``get`` raises BUSY
    {"action": "mock", "methods": {"put": "null"}}          a method's rule beats the service's

Consumers check the mask before any network (``mask.degraded`` on the call's span);
providers through :class:`MaskInterceptor` (the server side, for consumers that do not
follow the registry). Deleting the document, or writing ``{}``, lifts the mask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import BadRequestError, RpcError
from .._invocation import CallNext, Invocation
from .._pushed import on_valid
from ._fallback import answer
from ._rules import Fallback

__all__ = [
    "MaskInterceptor",
    "MaskRule",
    "MaskTable",
    "MaskWatch",
    "follow_masks",
    "mask_key",
    "parse_mask",
    "with_mask",
    "without_mask",
]

log = logging.getLogger("callscope.rpc")


def mask_key(service: str) -> str:
    return f"governance/{service}/mask"


@dataclass(frozen=True, slots=True)
class MaskRule:
    """One service's mask: a fallback for every method, and per-method ones."""

    service: Fallback | None = None
    methods: Mapping[str, Fallback] = field(default_factory=dict)

    def fallback(self, method: str) -> Fallback | None:
        return self.methods.get(method, self.service)


def parse_mask(value: Any) -> MaskRule | None:
    """A mask document, validated (``None`` for an empty one: no mask)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequestError(f"a mask is a map (action, methods), not {value!r:.80}")
    own = {k: v for k, v in value.items() if k != "methods"}
    service = Fallback.parse(own, "mask") if own else None
    methods = value.get("methods") or {}
    if not isinstance(methods, Mapping) or len(methods) > 1000:
        raise BadRequestError("mask.methods: a map of method names to fallbacks")
    parsed = {}
    for name, spec in methods.items():
        if not isinstance(name, str) or not name:
            raise BadRequestError(f"mask.methods: bad method name {name!r}")
        parsed[name] = Fallback.parse(spec, f"mask.methods.{name}")
    if service is None and not parsed:
        return None
    return MaskRule(service, parsed)


class MaskTable:
    """The masks in force, per service; ``active`` is false while none is (the hot path's
    only cost then)."""

    def __init__(self) -> None:
        self._rules: dict[str, MaskRule] = {}
        self.active = False
        self.applied = 0  # documents applied (pushes that changed something)

    def set(self, service: str, rule: MaskRule | None) -> None:
        if rule is None:
            self._rules.pop(service, None)
        else:
            self._rules[service] = rule
        self.active = bool(self._rules)
        self.applied += 1

    def fallback(self, service: str, method: str) -> Fallback | None:
        rule = self._rules.get(service)
        return None if rule is None else rule.fallback(method)

    def listener(self, service: str) -> Callable[[Any], None]:
        """A ``registry.watch_config`` listener that keeps ``service``'s mask here."""

        return on_valid(mask_key(service), parse_mask, lambda rule: self.set(service, rule))

    def rules(self) -> dict[str, MaskRule]:
        return dict(self._rules)


class MaskInterceptor:
    """Server side: a masked call is answered by its fallback before the handler runs (an
    event on its SERVER span, and the provider KPI counter ``governance.mask.degraded``)."""

    def __init__(self, table: MaskTable | None = None) -> None:
        self.table = table or MaskTable()

    async def __call__(self, inv: Invocation, call_next: CallNext) -> Any:
        table = self.table
        if table.active:
            fallback = table.fallback(inv.service, inv.method)
            if fallback is not None:
                from ..cluster import DECISIONS  # (rpc.cluster imports this package)

                inv.add_event("mask.degraded", action=fallback.action, side="provider")
                DECISIONS.add(inv.service, inv.local, inv.method, "mask.degraded")  # KPIs
                return await answer(
                    fallback, inv.service, inv.method, inv.args, inv.kwargs, "masked"
                )
        return await call_next(inv)


class MaskWatch:
    """The watches :func:`follow_masks` set up; :meth:`stop` ends them."""

    def __init__(self, interceptor: MaskInterceptor) -> None:
        self.interceptor = interceptor
        self.stops: list[Callable[[], None]] = []

    def stop(self) -> None:
        stops, self.stops = self.stops, []
        for stop in stops:
            stop()


async def follow_masks(server: Any, registry: Any) -> MaskWatch:
    """Apply ``governance/<service>/mask`` on ``server`` for each service it exports,
    pushed live from ``registry`` (called by ``rpc.registry.publish``)."""
    interceptor = MaskInterceptor()
    server.add_interceptor(interceptor)
    watch = MaskWatch(interceptor)
    names = sorted({spec.name for spec in server.services()})

    def start() -> None:
        for name in names:
            try:
                watch.stops.append(
                    registry.watch_config(mask_key(name), interceptor.table.listener(name))
                )
            except RpcError as err:
                log.warning("callscope: cannot watch %s: %s", mask_key(name), err)

    await asyncio.to_thread(start)
    return watch


def with_mask(document: Any, method: str | None, fallback: Any) -> dict[str, Any]:
    """``document`` (a mask document or ``None``) with ``fallback`` set for the service, or
    for ``method``; validated."""
    spec = Fallback.parse(fallback, "mask" if method is None else f"mask.methods.{method}")
    updated = dict(document or {})
    if method is None:
        methods = updated.get("methods")
        updated = {**spec.to_dict(), **({"methods": methods} if methods else {})}
    else:
        updated["methods"] = {**(updated.get("methods") or {}), method: spec.to_dict()}
    parse_mask(updated)
    return updated


def without_mask(document: Any, method: str | None) -> dict[str, Any] | None:
    """``document`` with the service's (or ``method``'s) mask lifted; ``None`` when nothing
    is left masked."""
    if not document:
        return None
    if method is None:
        methods = document.get("methods")
        return {"methods": methods} if methods else None
    methods = {k: v for k, v in (document.get("methods") or {}).items() if k != method}
    rest = {k: v for k, v in document.items() if k != "methods"}
    updated = {**rest, **({"methods": methods} if methods else {})}
    return updated or None
