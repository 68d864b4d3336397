"""Analytics rows in Elasticsearch: one index, document id = kind + natural key."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .._api import AnalyticsRow
from .._backends import StoreUrl
from .._errors import NoStore, StorageUnavailable
from ._client import connect, guarded
from ._deleting import delete_matching
from ._layout import ANALYTICS_MAPPINGS, analytics_index

__all__ = ["ElasticAnalyticsTable"]

MAX_ROWS = 10_000
_KEY_MAPPED: set[tuple[str, str]] = set()  # (host, index) known to map the "key" field


class ElasticAnalyticsTable:
    def __init__(self, url: StoreUrl) -> None:
        self.url = url.url
        self.index = analytics_index(url.option("prefix", "callscope"))
        self.client = connect(url)
        exists = guarded(lambda: self.client.indices.exists(index=self.index), "check index")
        if not exists and url.read_only:
            self.close()
            raise NoStore(f"no store at {self.url}: no index {self.index}")
        if not exists:
            from elasticsearch import BadRequestError

            try:
                self.client.indices.create(
                    index=self.index,
                    settings={"number_of_shards": 1,
                              "number_of_replicas": url.int_option("replicas", 0)},
                    mappings=ANALYTICS_MAPPINGS,
                )  # fmt: skip
            except BadRequestError as exc:  # created meanwhile by another process
                if "resource_already_exists" not in str(exc):
                    raise
        elif not url.read_only and (url.location, self.index) not in _KEY_MAPPED:
            # An index made before "key" was mapped learns it (once per process and index).
            key = {"key": ANALYTICS_MAPPINGS["properties"]["key"]}
            guarded(lambda: self.client.indices.put_mapping(index=self.index, properties=key),
                    "map analytics keys")  # fmt: skip
            _KEY_MAPPED.add((url.location, self.index))

    def put(self, kind: str, rows: Iterable[AnalyticsRow]) -> None:
        lines = []
        for key, service, time_us, body in rows:
            lines.append(json.dumps({"index": {"_index": self.index, "_id": f"{kind}|{key}"}}))
            doc = {"kind": kind, "service": service, "time_us": time_us, "key": key, "body": body}
            lines.append(json.dumps(doc, default=str))
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        result = guarded(lambda: self.client.bulk(operations=data), "bulk analytics")
        if result.get("errors"):
            reasons = [i["index"]["error"] for i in result["items"] if "error" in i["index"]]
            raise StorageUnavailable(f"elasticsearch refused analytics rows: {reasons[0]}")

    def rows(
        self, kind: str, service: str | None, start_us: int, end_us: int
    ) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = [
            {"term": {"kind": kind}},
            {"range": {"time_us": {"gte": start_us, "lt": end_us}}},
        ]
        if service is not None:
            filters.append({"term": {"service": service}})
        result = guarded(
            lambda: self.client.search(
                index=self.index, query={"bool": {"filter": filters}}, size=MAX_ROWS,
                sort=[{"time_us": "asc"}],
            ),
            "read analytics",
        )  # fmt: skip
        return [hit["_source"]["body"] for hit in result["hits"]["hits"]]

    def page(
        self,
        kind: str,
        service: str,
        start_us: int,
        end_us: int,
        limit: int,
        before: tuple[int, str] | None = None,
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Newest first: one search sorted by (time_us, key) descending, ``limit`` hits."""
        filters: list[dict[str, Any]] = [
            {"term": {"kind": kind}},
            {"term": {"service": service}},
            {"range": {"time_us": {"gte": start_us, "lt": end_us}}},
        ]
        if before is not None:
            same_time = [{"term": {"time_us": before[0]}}, {"range": {"key": {"lt": before[1]}}}]
            filters.append({"bool": {"minimum_should_match": 1, "should": [
                {"range": {"time_us": {"lt": before[0]}}}, {"bool": {"filter": same_time}},
            ]}})  # fmt: skip
        sort = [{"time_us": "desc"}, {"key": {"order": "desc", "unmapped_type": "keyword"}}]
        result = guarded(
            lambda: self.client.search(index=self.index, query={"bool": {"filter": filters}},
                                       size=limit, sort=sort),
            "read analytics",
        )  # fmt: skip
        out = []
        for hit in result["hits"]["hits"]:
            src = hit["_source"]
            key = src.get("key") or hit["_id"].split("|", 1)[-1]
            out.append((src["time_us"], key, src["body"]))
        return out

    def delete_before(self, cutoff_us: int) -> None:
        delete_matching(self.client, self.index, {"range": {"time_us": {"lt": cutoff_us}}})

    def refresh(self) -> None:
        guarded(lambda: self.client.indices.refresh(index=self.index), "refresh analytics")

    def clear(self) -> None:
        delete_matching(self.client, self.index, {"match_all": {}})

    def drop(self) -> None:
        guarded(lambda: self.client.indices.delete(index=self.index), "drop analytics")

    def close(self) -> None:
        self.client.close()
