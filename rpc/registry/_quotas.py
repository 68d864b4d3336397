"""Per-credential quotas of the embedded registry, so no tenant can use up everyone's share.

A credential is the principal a token maps to (everyone is ``admin`` on a server
without tokens). Past a quota the call fails with ``RESOURCE_EXHAUSTED`` (not
retriable: something must be closed or unregistered first); the server as a whole
being full is ``BUSY`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._validate import MAX_INSTANCES_PER_SERVICE


@dataclass(frozen=True, slots=True)
class Quotas:
    """``sessions``, ``registrations`` (instances and consumer entries), ``watches`` and
    configuration ``documents`` (count and bytes) per credential, and the instances one
    service may list."""

    sessions_per_credential: int = 4096
    registrations_per_credential: int = 16_384
    watches_per_credential: int = 4096
    instances_per_service: int = MAX_INSTANCES_PER_SERVICE
    documents_per_credential: int = 10_000
    document_bytes_per_credential: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"quota {name} must be a positive integer, not {value!r}")
