"""The storage contracts: :class:`SpanStore` for spans, :class:`AnalyticsTable` under analytics.

Contract of every backend (checked by ``tests/storage/test_conformance.py`` on all of them):

* ``write_spans`` is idempotent and durable: a span is keyed by ``trace_id`` + ``span_id``;
  writing it again (at-least-once redelivery) leaves one stored span. When it returns, the
  spans survive a crash of this process. A backend that is down, slow or busy raises
  :class:`StorageUnavailable` (retry later: nothing half-written is lost, since a retry
  rewrites the same keys); records refused for good raise :class:`RejectedSpans` after
  the others were written.
* Reads see every write that returned once :meth:`SpanStore.refresh` was called (search
  backends make writes visible within about a second without it).
* ``find_trace_ids`` answers newest first, at most ``query.limit`` distinct traces.
* ``scan_spans`` yields every stored span that started in ``[start_us, end_us)`` once, in
  no particular order, a page at a time (the analytics jobs read a window with it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol

from callscope_contract import SpanRecord

from ._model import Trace, TraceQuery

__all__ = ["AnalyticsRow", "AnalyticsTable", "SpanStore"]


class SpanStore(ABC):
    """Where spans are kept and searched; one instance per process, safe across threads."""

    url: str = ""

    @abstractmethod
    def write_spans(self, spans: Sequence[SpanRecord]) -> None:
        """Store a batch, idempotently (see the module contract)."""

    @abstractmethod
    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        """The stored traces among ``trace_ids``, in the order asked; unknown ids are left out."""

    @abstractmethod
    def find_trace_ids(self, query: TraceQuery) -> list[str]:
        """Ids of traces with a span matching ``query``, newest first."""

    @abstractmethod
    def scan_spans(self, start_us: int, end_us: int) -> Iterator[SpanRecord]:
        """Every span that started in ``[start_us, end_us)``, once each, in no set order."""

    @abstractmethod
    def services(self) -> list[str]:
        """Every service that has stored spans, sorted."""

    @abstractmethod
    def operations(self, service: str) -> list[str]:
        """Span names seen for ``service``, sorted."""

    @abstractmethod
    def delete_before(self, cutoff_us: int) -> None:
        """Retention: forget spans that started before ``cutoff_us``."""

    @abstractmethod
    def count(self) -> int:
        """How many spans are stored (for tests, benchmarks and checks; may scan)."""

    @abstractmethod
    def clear(self) -> None:
        """Forget everything this store holds (tests and demos)."""

    def refresh(self) -> None:  # noqa: B027 (a no-op for stores that are read-your-writes)
        """Make every returned write visible to searches now."""

    def close(self) -> None:  # noqa: B027
        """Release connections; the store is unusable afterwards."""

    # -- composed from the above ----------------------------------------------------------
    def get_trace(self, trace_id: str) -> Trace | None:
        found = self.get_traces([trace_id])
        return found[0] if found else None

    def find_traces(self, query: TraceQuery) -> list[Trace]:
        """The traces :meth:`find_trace_ids` names, fetched in one round trip where possible."""
        return self.get_traces(self.find_trace_ids(query))

    def __enter__(self) -> SpanStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# An analytics row: (natural key, service, time in µs, the record as a JSON-able dict).
AnalyticsRow = tuple[str, str, int, dict[str, Any]]


class AnalyticsTable(Protocol):
    """What a backend provides under :class:`storage.AnalyticsStore`: rows of a few kinds.

    ``put`` is idempotent by (kind, key); ``rows`` returns the rows of ``kind`` whose time is
    in ``[start_us, end_us)`` and, unless ``service`` is None, whose service matches.
    """

    url: str

    def put(self, kind: str, rows: Iterable[AnalyticsRow]) -> None: ...

    def rows(
        self, kind: str, service: str | None, start_us: int, end_us: int
    ) -> list[dict[str, Any]]: ...

    def page(
        self,
        kind: str,
        service: str,
        start_us: int,
        end_us: int,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Up to ``limit`` rows of ``kind`` and ``service`` whose time is in ``[start_us,
        end_us)``, newest first (by time, then key, descending), as ``(time_us, key, row)``;
        ``before``: only rows that sort after that ``(time_us, key)`` (the next page)."""
        ...

    def delete_before(self, cutoff_us: int) -> None: ...

    def clear(self) -> None: ...

    def refresh(self) -> None: ...

    def close(self) -> None: ...
