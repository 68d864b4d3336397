"""Who holds how many configuration documents, and how many bytes of them.

A document counts against the credential that wrote it last (an overwrite by another
credential moves it to that one's share), so one tenant with a write grant cannot fill
the registry's memory and disk for all: past ``documents_per_credential`` documents or
``document_bytes_per_credential`` bytes a write is ``RESOURCE_EXHAUSTED`` until that
tenant deletes some. Documents restored from disk count for nobody until rewritten.
"""

from __future__ import annotations

from .._errors import ResourceExhaustedError
from ._quotas import Quotas

__all__ = ["DocumentShares"]

NOBODY = ""


class DocumentShares:
    def __init__(self, quotas: Quotas) -> None:
        self._quotas = quotas
        self._documents: dict[str, tuple[str, int]] = {}  # key -> (writer, bytes)
        self._held: dict[str, list[int]] = {}  # writer -> [documents, bytes]

    def restore(self, key: str, size: int) -> None:
        self._documents[key] = (NOBODY, size)

    def check(self, writer: str, key: str, size: int) -> None:
        """RESOURCE_EXHAUSTED if writing ``size`` bytes at ``key`` would put ``writer``
        past a quota (rewriting one's own document counts only the difference)."""
        documents, size_held = self._held.get(writer, (0, 0))
        before = self._documents.get(key)
        if before is not None and before[0] == writer:
            size_held -= before[1]
        else:
            documents += 1
        quotas = self._quotas
        if documents > quotas.documents_per_credential:
            raise ResourceExhaustedError(
                f"{writer!r} holds {documents - 1} configuration documents already (the "
                f"per-credential limit is {quotas.documents_per_credential}); delete some first"
            )
        if size_held + size > quotas.document_bytes_per_credential:
            raise ResourceExhaustedError(
                f"{writer!r} would hold {size_held + size} bytes of configuration documents "
                f"(the per-credential limit is {quotas.document_bytes_per_credential})"
            )

    def wrote(self, writer: str, key: str, size: int) -> None:
        self.forget(key)
        self._documents[key] = (writer, size)
        held = self._held.setdefault(writer, [0, 0])
        held[0] += 1
        held[1] += size

    def forget(self, key: str) -> None:
        before = self._documents.pop(key, None)
        if before is None or before[0] == NOBODY:
            return
        held = self._held[before[0]]
        held[0] -= 1
        held[1] -= before[1]
        if not held[0]:
            del self._held[before[0]]

    def held(self, writer: str) -> tuple[int, int]:
        """(documents, bytes) that count against ``writer``."""
        documents, size = self._held.get(writer, (0, 0))
        return documents, size
