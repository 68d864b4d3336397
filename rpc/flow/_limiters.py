"""Limiters by name: the ``limiters`` extension kind (DESIGN: every strategy found by name).

A limiter is a factory of admission gates: ``Server.add_limiter(name, **options)`` builds
one and gives it the server (``attach(server)`` if it has one -- it then adds itself as a
gate, an interceptor, or both -- else ``add_gate``). Built in: ``tiers``
(:class:`DynamicFlow`; options ``thresholds``, ``limits``, ``hysteresis``, ``interval``,
``window``) and ``gradient`` (:class:`GradientLimit`; ``service`` and its options).
Others register with ``@rpc.extension("limiters", "name")`` or the entry-point group
``callscope.limiters``.
"""

from __future__ import annotations

from typing import Any

from .._extensions import extension_point
from ._dynamic import DynamicFlow, TierRules

__all__ = ["LIMITERS", "tiers"]

LIMITERS = extension_point("limiters")


def tiers(*, interval: float = 0.5, window: int = 4, **rules: Any) -> DynamicFlow:
    """The ``tiers`` limiter: a :class:`DynamicFlow` from rules given as plain data."""
    return DynamicFlow(TierRules.from_dict(rules), interval=interval, window=window)


LIMITERS.register_lazy("tiers", "rpc.flow._limiters:tiers")
LIMITERS.register_lazy("gradient", "rpc.flow._gradient:GradientLimit")
