"""A registry watch listener for a governance document: parse what is pushed, then apply it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ._errors import RpcError

__all__ = ["on_valid"]

log = logging.getLogger("callscope.rpc")
T = TypeVar("T")


def on_valid(
    key: str, parse: Callable[[Any], T], apply: Callable[[T], object]
) -> Callable[[Any], None]:
    """``apply(parse(value))`` for each document pushed at ``key`` (``None`` when deleted).
    One that does not parse is logged and ignored, and the last good one stands: the
    registry refuses such documents before storing, so it comes only from an older writer."""

    def pushed(document: Any) -> None:
        try:
            parsed = parse(None if document is None else document.value)
        except RpcError as err:
            log.warning("callscope: ignoring %s: %s", key, err)
            return
        apply(parsed)

    return pushed
