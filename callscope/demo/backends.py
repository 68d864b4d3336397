"""Where the demo's spans, registry and bus live: embedded defaults, or the real stack.

``embedded``: the spool (a directory per process), SQLite, and an embedded registry server
the demo starts. ``real``: Kafka, Elasticsearch and ZooKeeper from ``callscope stack``
(started if they are not running), with names of the demo's own -- topics, index prefix,
ZooKeeper root, consumer group -- so a run neither reads nor disturbs anyone else's data.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from callscope_contract import environment

__all__ = ["Backends", "embedded", "real"]

REAL_SERVICES = ("kafka", "elasticsearch", "zookeeper")


@dataclass
class Backends:
    kind: str
    store_url: str
    registry_url: str | None  # None: the demo starts an embedded registry
    collector_args: list[str]
    service_env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        bus = self.service_env.get(environment.CALLSCOPE_KAFKA_BOOTSTRAP)
        return f"spans: {'Kafka ' + bus if bus else 'spool'} -> {self.store_url}"


def embedded(workdir: Path) -> Backends:
    spool = workdir / "spool"
    return Backends(
        kind="embedded",
        store_url=f"sqlite://{workdir / 'spans.db'}",
        registry_url=None,
        collector_args=["--spool", str(spool), "--dlq-file", str(workdir / "dlq.jsonl")],
        service_env={environment.CALLSCOPE_SPOOL_DIR: str(spool)},
    )


def real(workdir: Path) -> Backends:
    """Start (or find) the stack's services and name the demo's own corner of each."""
    from callscope.stack import Stack

    stack = Stack()
    stack.up(list(REAL_SERVICES))
    endpoints = stack.env(list(REAL_SERVICES))
    kafka = endpoints[environment.CALLSCOPE_KAFKA_BOOTSTRAP]
    elastic = endpoints[environment.CALLSCOPE_ELASTICSEARCH_URL].split("://", 1)[-1]
    zookeeper = endpoints[environment.CALLSCOPE_ZOOKEEPER]
    run = f"callscope-demo-{secrets.token_hex(4)}"
    spans_topic, kpis_topic = f"{run}.spans", f"{run}.kpis"
    return Backends(
        kind="real",
        store_url=f"elasticsearch://{elastic}?prefix={run}",
        registry_url=f"zookeeper://{zookeeper}/{run}",
        collector_args=[
            "--kafka",
            kafka,
            "--group",
            run,
            "--spans-topic",
            spans_topic,
            "--kpis-topic",
            kpis_topic,
            "--dlq-topic",
            f"{run}.spans.dlq",
            "--dlq-file",
            str(workdir / "dlq.jsonl"),
        ],
        service_env={
            environment.CALLSCOPE_KAFKA_BOOTSTRAP: kafka,
            environment.CALLSCOPE_SPANS_TOPIC: spans_topic,
            environment.CALLSCOPE_KPIS_TOPIC: kpis_topic,
            environment.CALLSCOPE_SPOOL_DIR: str(workdir / "spool"),  # while Kafka is away
        },
    )
