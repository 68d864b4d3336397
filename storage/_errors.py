"""Storage errors, with stable codes and a ``retriable`` flag (STYLE §2).

::

    StorageError                 code, retriable
    ├── StorageUnavailable       UNAVAILABLE, retriable: the backend is down, slow or busy
    ├── BadQuery                 BAD_REQUEST: a query or URL the caller must fix
    ├── NoStore                  NOT_FOUND: opened to read, nothing is there (a typo?)
    └── RejectedSpans            REJECTED: the backend refused some records for good

Backends convert their client's errors to these at one boundary, so the
collector decides "retry with backoff" or "dead-letter" from ``retriable`` alone.
"""

from __future__ import annotations

__all__ = ["BadQuery", "NoStore", "RejectedSpans", "StorageError", "StorageUnavailable"]


class StorageError(Exception):
    code = "INTERNAL"
    retriable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StorageUnavailable(StorageError):
    """The backend did not answer or asked us to slow down: retry later, nothing was lost."""

    code = "UNAVAILABLE"
    retriable = True


class BadQuery(StorageError):
    code = "BAD_REQUEST"


class NoStore(StorageError):
    """A store opened read-only does not exist: reading never creates one, so a typo in a
    path, prefix or host is told apart from an empty store."""

    code = "NOT_FOUND"


class RejectedSpans(StorageError):
    """Some records were refused for good (the others were written).

    ``rejected`` maps a record's position in the batch to the backend's reason.
    """

    code = "REJECTED"

    def __init__(self, rejected: dict[int, str]) -> None:
        super().__init__(f"{len(rejected)} record(s) rejected by the store")
        self.rejected = rejected
