"""Routers (kind ``routers``): each narrows the providers a call may go to.

A rule is a map: ``{"kind": "condition", "rule": "...", "force": false,
"priority": 0, "enabled": true, "name": "..."}``, or a string as shorthand for a
condition rule (``"zone = a"`` alone means ``"=> zone = a"``). Rules run by priority (highest
first). A rule that leaves no provider is skipped -- the call goes on with what it
was given -- unless it is ``force``, then the call fails ``NO_PROVIDER`` naming it.
Built-in kinds: ``condition``, ``script``, ``tag``, ``local_first``, ``isolation``;
others register with ``@rpc.extension("routers", kind)`` as ``factory(spec)``.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from .._directory import Provider
from .._errors import BadRequestError
from .._extensions import extension_point
from .._invocation import Invocation
from ._condition import parse_condition
from ._facts import provider_facts
from ._script import ScriptError, compile_script

__all__ = [
    "ROUTERS",
    "ConditionRouter",
    "IsolationRouter",
    "LocalFirstRouter",
    "Rule",
    "ScriptRouter",
    "TagRouter",
]

log = logging.getLogger("callscope.rpc")
ROUTERS = extension_point("routers")
ISOLATION_LEVELS = ("host", "rack", "room", "zone")  # innermost first; the process is injvm
_SPEC_KEYS = {"kind", "rule", "force", "priority", "enabled", "name", "attachment", "levels"}


class Rule:
    """What every router shares: its spec's name, force, priority and enabled flag."""

    per_call = False  # True when the result depends on more than the method

    def __init__(self, spec: Mapping[str, Any]) -> None:
        unknown = set(spec) - _SPEC_KEYS
        if unknown:
            raise BadRequestError(f"routing rule: unknown field {sorted(unknown)[0]!r}")
        self.spec = dict(spec)
        self.kind = str(spec.get("kind", ""))
        self.force = _flag(spec, "force", False)
        self.enabled = _flag(spec, "enabled", True)
        priority = spec.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise BadRequestError("routing rule: priority is an integer")
        self.priority = priority
        self.name = str(spec.get("name") or spec.get("rule") or self.kind)[:200]

    def route(
        self, providers: Sequence[Provider], inv: Invocation, call: dict[str, Any]
    ) -> Sequence[Provider]:
        raise NotImplementedError


def _flag(spec: Mapping[str, Any], key: str, default: bool) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise BadRequestError(f"routing rule: {key} is true or false")
    return value


@ROUTERS.register("condition")
class ConditionRouter(Rule):
    """``when => then`` over the call and each provider (``rpc.routing`` docs)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.rule = parse_condition(spec.get("rule", ""))
        self.per_call = self.rule.per_call

    def route(
        self, providers: Sequence[Provider], inv: Invocation, call: dict[str, Any]
    ) -> Sequence[Provider]:
        if not self.rule.applies(call):
            return providers
        return [p for p in providers if self.rule.allows(provider_facts(p), call)]


@ROUTERS.register("script")
class ScriptRouter(Rule):
    """Keeps the providers for which the safe expression is true (``rpc.routing._script``)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.script = compile_script(spec.get("rule", ""))
        self.per_call = self.script.per_call
        self._warned = False

    def route(
        self, providers: Sequence[Provider], inv: Invocation, call: dict[str, Any]
    ) -> Sequence[Provider]:
        consumer = call["consumer"]
        try:
            return [p for p in providers if self.script.evaluate(provider_facts(p), call, consumer)]
        except ScriptError as exc:  # a bound was hit: this rule steps aside for this call
            if not self._warned:
                self._warned = True
                log.warning("callscope: script rule %r skipped: %s", self.name, exc)
            return providers


@ROUTERS.register("tag")
class TagRouter(Rule):
    """A call tagged (attachment ``tag``) goes to providers labelled with that tag, an
    untagged call to untagged providers; with no match it falls back to the untagged."""

    per_call = True

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.attachment = str(spec.get("attachment", "tag"))

    def route(
        self, providers: Sequence[Provider], inv: Invocation, call: dict[str, Any]
    ) -> Sequence[Provider]:
        tag = inv.attachments.get(self.attachment)
        untagged = [p for p in providers if not p.metadata.get("tag")]
        if not tag:
            return untagged
        tagged = [p for p in providers if p.metadata.get("tag") == tag]
        return tagged or ([] if self.force else untagged)


def _local_names() -> set[str]:
    names = {"127.0.0.1", "::1", "localhost", socket.gethostname()}
    with contextlib.suppress(OSError):
        names.update(str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None))
    return names


@ROUTERS.register("local_first")
class LocalFirstRouter(Rule):
    """Providers on this host first (the in-process export, when there is one, comes
    before any router); all of them when none is local."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.local = _local_names()

    def route(
        self, providers: Sequence[Provider], inv: Invocation, call: dict[str, Any]
    ) -> Sequence[Provider]:
        local = [p for p in providers if provider_facts(p)["ip"] in self.local]
        return local or providers


@ROUTERS.register("isolation")
class IsolationRouter(Rule):
    """Stay as close as the labels allow: providers sharing the consumer's host, else its
    rack, room, then zone (``levels`` to choose and order them), else all."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        levels = spec.get("levels", list(ISOLATION_LEVELS))
        if not isinstance(levels, list) or not all(isinstance(x, str) for x in levels):
            raise BadRequestError("routing rule: levels is a list of label names")
        self.levels = levels

    def route(
        self, providers: Sequence[Provider], inv: Invocation, call: dict[str, Any]
    ) -> Sequence[Provider]:
        consumer = call["consumer"]
        for level in self.levels:
            mine = consumer.get(level)
            if mine is None:
                continue
            near = [p for p in providers if provider_facts(p).get(level) == mine]
            if near:
                return near
        return providers


def build_rule(spec: Any) -> Rule:
    """A router from its spec (validated: a bad one is ``BAD_REQUEST`` naming the problem)."""
    if isinstance(spec, str):  # shorthand: a condition rule; without "=>", its provider side
        spec = {"kind": "condition", "rule": spec if "=>" in spec else f"=> {spec}"}
    if not isinstance(spec, Mapping):
        raise BadRequestError(f"a routing rule is a map or a string, not {type(spec).__name__}")
    kind = spec.get("kind")
    if not isinstance(kind, str):
        raise BadRequestError("a routing rule needs a kind (condition, script, tag, ...)")
    rule = ROUTERS.get(kind)(spec)
    return rule  # type: ignore[no-any-return]
