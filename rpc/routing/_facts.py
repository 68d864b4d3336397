"""What rules may read: a provider's attributes, and the call's (request and consumer).

Both are plain dicts of strings and numbers built here, never the objects
themselves, so no rule can reach an attribute or method of a framework object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._directory import Provider
from .._invocation import Invocation

__all__ = ["call_facts", "provider_facts"]

_PLAIN = (str, int, float, bool)


def provider_facts(provider: Provider) -> dict[str, Any]:
    """``address``, ``host``, ``port``, ``weight`` and every plain metadata label."""
    host, _, port = provider.address.rpartition(":")
    facts: dict[str, Any] = {
        key: value for key, value in provider.metadata.items() if isinstance(value, _PLAIN)
    }
    facts.update(
        address=provider.address,
        host=facts.get("host", host.strip("[]")),
        ip=host.strip("[]"),
        port=int(port) if port.isdigit() else 0,
        weight=provider.weight,
    )
    return facts


def call_facts(inv: Invocation, consumer: Mapping[str, Any]) -> dict[str, Any]:
    """``service``, ``method``, ``version``, ``group``, ``args`` (plain ones), the
    plain ``attachments`` and the consumer's labels (``consumer.zone``...)."""
    return {
        "service": inv.service,
        "method": inv.method,
        "version": inv.version,
        "group": inv.group,
        "args": [a if isinstance(a, _PLAIN) or a is None else str(a)[:256] for a in inv.args],
        "attachments": {
            k: v for k, v in inv.attachments.items() if isinstance(v, _PLAIN) and isinstance(k, str)
        },
        "consumer": dict(consumer),
    }
