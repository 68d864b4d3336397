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

__all__ = [
    "NO_PROVIDER",
    "ROUTERS",
    "ConditionRouter",
    "ConditionRule",
    "IsolationRouter",
    "LocalFirstRouter",
    "RouterChain",
    "Rule",
    "Script",
    "ScriptError",
    "ScriptRouter",
    "TagRouter",
    "build_rule",
    "compile_script",
    "parse_condition",
]
