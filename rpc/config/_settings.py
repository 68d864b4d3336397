"""The consumer's governance settings for one service or method, validated at the edge.

One frozen :class:`Settings` holds every key a strategy reads. A layer (code, a
file, a registry document) is a plain mapping; :meth:`Settings.merged` applies one
over another, so "method over service" and "consumer over provider over global"
are the same operation. A bad key or value is a :class:`~rpc.BadRequestError`
that names it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from .._errors import BadRequestError

__all__ = ["FAILBACK_ACTIONS", "Settings", "declared_idempotent", "idempotent"]

FAILBACK_ACTIONS = ("ignore", "error", "retry", "switch")
_MAX_RETRIES = 10
_MAX_FORKS = 64


@dataclass(frozen=True, slots=True)
class Settings:
    """What the cluster layer does for one (service, method).

    ``cluster``: the strategy's name. ``retries``: extra attempts after the first
    (failover, failback). ``idempotent``: the method may run twice, so a call in
    doubt (timed out, or its link lost after sending) may be retried.
    ``attempt_timeout``: seconds per attempt (``None``: the call's own deadline).
    ``retry_budget`` / ``retry_ratio``: the token bucket that stops retry storms
    (gRPC's retry throttling: a failed attempt takes a token, a success gives back
    ``retry_ratio``; no retries at or below half of ``retry_budget``). ``forks``:
    concurrent attempts of ``forking``. ``failback``: error code (or ``"*"``) to
    ignore / error / retry / switch; ``failback_default`` is what ``ignore`` returns.
    ``failcache_*``: where failed calls wait, how often they are re-sent (with
    ``failcache_jitter`` as a fraction), and how many tries before giving up.
    ``warmup``: seconds over which a newly started provider's weight ramps up to full
    (0: none). ``hash_arguments`` / ``virtual_nodes``: which positional arguments key
    the ``consistent_hash`` balancer, and its points per provider on the ring.
    ``routers``: routing rules (``rpc.routing``), each a map with its ``kind``.
    ``max_inflight``: calls of the service this consumer has in flight at once (read
    at the service level; ``None``: no cap); one more is refused RESOURCE_EXHAUSTED.
    ``breaker``: circuit-breaker rules and their fallback (``rpc.degrade.BreakerRules``;
    ``None``: no breaker); a stronger layer's replaces a weaker one's whole.
    """

    cluster: str = "failfast"
    balancer: str = "round_robin"
    retries: int = 2
    idempotent: bool = False
    attempt_timeout: float | None = None
    retry_budget: float = 100.0
    retry_ratio: float = 0.1
    forks: int = 2
    failback: Mapping[str, str] = field(default_factory=lambda: {"*": "error"})
    failback_default: Any = None
    failcache_path: str = "callscope-failcache.db"
    failcache_period: float = 5.0
    failcache_jitter: float = 0.2
    failcache_tries: int = 10
    warmup: float = 0.0
    hash_arguments: tuple[int, ...] = (0,)
    virtual_nodes: int = 160
    routers: tuple[Mapping[str, Any] | str, ...] = ()
    max_inflight: int | None = None
    breaker: Any = None  # a map (or rpc.degrade.BreakerRules), None: no breaker

    def merged(self, layer: Mapping[str, Any] | None) -> Settings:
        """These settings with ``layer``'s keys applied on top (validated)."""
        if not layer:
            return self
        if not isinstance(layer, Mapping):
            raise BadRequestError(f"settings must be a map of names to values, not {layer!r:.80}")
        unknown = sorted(set(layer) - _NAMES)
        if unknown:
            raise BadRequestError(
                f"unknown setting {unknown[0]!r}; known: {', '.join(sorted(_NAMES))}"
            )
        values = {name: _check(name, value) for name, value in layer.items()}
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


_NAMES = frozenset(f.name for f in fields(Settings))
_MARK = "__callscope_idempotent__"

F = TypeVar("F", bound=Callable[..., Any])


def idempotent(fn: F) -> F:
    """Declare a method safe to run twice (on an interface or a service class): a call of it
    that timed out, or lost its link after sending, may be retried by ``failover``."""
    setattr(fn, _MARK, True)
    return fn


def declared_idempotent(iface: type[Any] | None) -> list[str]:
    """The methods of ``iface`` marked with :func:`idempotent`."""
    if iface is None:
        return []
    return sorted(
        name
        for name in dir(iface)
        if not name.startswith("_") and getattr(getattr(iface, name, None), _MARK, False)
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _check(name: str, value: Any) -> Any:
    if name in ("cluster", "balancer", "failcache_path"):
        if not isinstance(value, str) or not value.strip():
            raise BadRequestError(f"setting {name!r} must be a non-empty string, not {value!r}")
        return value
    if name == "idempotent":
        if not isinstance(value, bool):
            raise BadRequestError(f"setting 'idempotent' must be true or false, not {value!r}")
        return value
    if name in ("retries", "forks", "failcache_tries"):
        top = {"retries": _MAX_RETRIES, "forks": _MAX_FORKS, "failcache_tries": 1000}[name]
        low = 0 if name == "retries" else 1
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= top:
            raise BadRequestError(f"setting {name!r} must be an integer in {low}..{top}")
        return value
    if name in ("attempt_timeout", "retry_budget", "retry_ratio", "failcache_period"):
        if value is None and name == "attempt_timeout":
            return None
        number = _number(name, value)
        if number <= 0:
            raise BadRequestError(f"setting {name!r} must be positive, not {value!r}")
        return number
    if name == "warmup":
        number = _number(name, value)
        if number < 0:
            raise BadRequestError("setting 'warmup' must be zero or more seconds")
        return number
    if name == "max_inflight":
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000
        ):
            raise BadRequestError("setting 'max_inflight' must be null or an integer in 1..1000000")
        return value
    if name == "virtual_nodes":
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
            raise BadRequestError("setting 'virtual_nodes' must be an integer in 1..1000")
        return value
    if name == "hash_arguments":
        if (
            not isinstance(value, (list, tuple))
            or not value
            or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 64 for i in value
            )
        ):
            raise BadRequestError("setting 'hash_arguments' is a list of argument positions")
        return tuple(value)
    if name == "routers":
        from ..routing import RouterChain  # validates each rule (a position for every error)

        if not isinstance(value, (list, tuple)) or len(value) > 64:
            raise BadRequestError("setting 'routers' is a list of at most 64 routing rules")
        for index, spec in enumerate(value):
            try:
                RouterChain([spec], {})
            except BadRequestError as exc:
                raise BadRequestError(f"routers[{index}]: {exc.message}") from None
        return tuple(spec if isinstance(spec, str) else dict(spec) for spec in value)
    if name == "breaker":
        from ..degrade import BreakerRules  # validates each rule, naming the field

        if value is None or isinstance(value, BreakerRules):
            return value
        BreakerRules.parse(value)
        return dict(value)
    if name == "failcache_jitter":
        number = _number(name, value)
        if not 0 <= number < 1:
            raise BadRequestError("setting 'failcache_jitter' must be in [0, 1)")
        return number
    if name == "failback":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and v in FAILBACK_ACTIONS for k, v in value.items()
        ):
            raise BadRequestError(
                "setting 'failback' maps error codes (or '*') to one of "
                + ", ".join(FAILBACK_ACTIONS)
            )
        return dict(value)
    return value  # failback_default: any plain value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequestError(f"setting {name!r} must be a finite number, not {value!r}")
    return float(value)
