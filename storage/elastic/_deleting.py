"""Delete the documents a query matches, by search + bulk delete.

Not ``_delete_by_query``: that lives in the ``reindex`` module, which minimal
distributions (the integration-test one ``callscope stack`` runs) leave out.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from ._client import guarded

__all__ = ["delete_matching"]

PAGE = 5000


def delete_matching(client: Any, index: str, query: dict[str, Any]) -> int:
    deleted = 0
    while True:
        guarded(lambda: client.indices.refresh(index=index, allow_no_indices=True), "refresh")
        result = guarded(
            lambda: client.search(
                index=index, query=query, size=PAGE, source=False,
                ignore_unavailable=True, allow_no_indices=True,
            ),
            "search for deletion",
        )  # fmt: skip
        hits = result["hits"]["hits"]
        if not hits:
            return deleted
        lines = [f'{{"delete":{{"_index":"{h["_index"]}","_id":"{h["_id"]}"}}}}' for h in hits]
        body = ("\n".join(lines) + "\n").encode()
        guarded(partial(client.bulk, operations=body, refresh=True), "bulk delete")
        deleted += len(hits)
