"""Routing rules (kind ``routers``): which providers a call may go to.

Chained by priority, each extensible by name: ``condition`` rules, safe ``script``
rules, ``tag`` routing, ``local_first`` and ``isolation`` levels. Set per service
(and method) as the ``routers`` setting, in code or as the registry document
``governance/<service>/routing``, which is pushed live.
"""

from ._chain import NO_PROVIDER, RouterChain
from ._condition import ConditionRule, parse_condition
from ._routers import (
    ROUTERS,
    ConditionRouter,
    IsolationRouter,
    LocalFirstRouter,
    Rule,
    ScriptRouter,
    TagRouter,
    build_rule,
)
from ._script import Script, ScriptError, compile_script
from ._tag import TAG, TagContext, carry_tags, current_tag

__all__ = [
    "NO_PROVIDER",
    "ROUTERS",
    "TAG",
    "ConditionRouter",
    "ConditionRule",
    "IsolationRouter",
    "LocalFirstRouter",
    "RouterChain",
    "Rule",
    "Script",
    "ScriptError",
    "ScriptRouter",
    "TagContext",
    "TagRouter",
    "build_rule",
    "carry_tags",
    "compile_script",
    "current_tag",
    "parse_condition",
]
