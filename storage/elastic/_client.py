"""The Elasticsearch client, and the one place its errors become storage errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._backends import StoreUrl
from .._errors import StorageError, StorageUnavailable

__all__ = ["connect", "guarded", "is_retriable_status"]

T = TypeVar("T")


def connect(url: StoreUrl) -> Any:
    from elasticsearch import Elasticsearch

    scheme = url.option("scheme", "http")
    location = url.location or "127.0.0.1:9200"
    return Elasticsearch(
        [f"{scheme}://{location}"],
        request_timeout=url.int_option("timeout_s", 30),
        max_retries=url.int_option("retries", 1),
        retry_on_timeout=True,
    )


def is_retriable_status(status: int) -> bool:
    return status == 429 or status >= 500


def guarded(call: Callable[[], T], what: str) -> T:
    """Run one client call; a down/slow/busy cluster becomes :class:`StorageUnavailable`."""
    from elastic_transport import ConnectionError as TransportConnectionError
    from elastic_transport import ConnectionTimeout, TransportError
    from elasticsearch import ApiError

    try:
        return call()
    except (TransportConnectionError, ConnectionTimeout) as exc:
        raise StorageUnavailable(f"elasticsearch {what}: {exc}") from exc
    except ApiError as exc:
        if is_retriable_status(exc.meta.status):
            raise StorageUnavailable(f"elasticsearch {what}: {exc}") from exc
        raise StorageError(f"elasticsearch {what}: {exc}") from exc
    except TransportError as exc:
        raise StorageUnavailable(f"elasticsearch {what}: {exc}") from exc
