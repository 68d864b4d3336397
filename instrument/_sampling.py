"""Head samplers, registered by name (STYLE §4): which new traces are recorded for export.

A sampler only decides for spans that end well: :class:`~instrument.Span` keeps
an unsampled span recording, and one that ends in error is exported anyway,
so errors are always kept whatever the ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rpc import extension_point

__all__ = ["Sampler", "get_sampler", "register_sampler"]

_MAX = 1 << 64


class Sampler(Protocol):
    """``parent_sampled`` is ``None`` for a root span, else the parent's sampled flag."""

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool: ...


class AlwaysOn:
    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        return True

    def __repr__(self) -> str:
        return "AlwaysOn()"


class AlwaysOff:
    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        return False

    def __repr__(self) -> str:
        return "AlwaysOff()"


class TraceIdRatio:
    """Keeps ``ratio`` of traces, decided by the trace id alone so every process agrees."""

    def __init__(self, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"sample ratio must be within 0..1, not {ratio}")
        self.ratio = ratio
        self._bound = round(ratio * _MAX)

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        return (trace_id & (_MAX - 1)) < self._bound

    def __repr__(self) -> str:
        return f"TraceIdRatio({self.ratio})"


class ParentBased:
    """Follows the parent's decision; asks ``root`` only for new traces."""

    def __init__(self, root: Sampler) -> None:
        self.root = root

    def should_sample(self, trace_id: int, parent_sampled: bool | None) -> bool:
        if parent_sampled is None:
            return self.root.should_sample(trace_id, None)
        return parent_sampled

    def __repr__(self) -> str:
        return f"ParentBased({self.root!r})"


SamplerFactory = Callable[[float], Sampler]

SAMPLERS = extension_point("samplers")
for _name, _factory in {
    "always_on": lambda ratio: AlwaysOn(),
    "always_off": lambda ratio: AlwaysOff(),
    "traceidratio": TraceIdRatio,
    "parentbased_always_on": lambda ratio: ParentBased(AlwaysOn()),
    "parentbased_always_off": lambda ratio: ParentBased(AlwaysOff()),
    "parentbased_traceidratio": lambda ratio: ParentBased(TraceIdRatio(ratio)),
}.items():
    SAMPLERS.register(_name, _factory)


def register_sampler(name: str, factory: SamplerFactory) -> None:
    """Make ``factory(ratio)`` available as ``CALLSCOPE_SAMPLER=name``."""
    SAMPLERS.register(name, factory, replace=True)


def get_sampler(name: str = "parentbased_traceidratio", ratio: float = 1.0) -> Sampler:
    """The sampler registered as ``name``, or one from the ``callscope.samplers`` entry points."""
    return SAMPLERS.get(name)(ratio)
