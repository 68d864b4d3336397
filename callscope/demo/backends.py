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
    run_name: str = ""  # real: the prefix of the run's topics, indices and ZooKeeper root

    @property
    def spans_topic(self) -> str | None:
        """``HOST:PORT/TOPIC`` of the run's spans on Kafka (None: the spool)."""
        bootstrap = self.service_env.get(environment.CALLSCOPE_KAFKA_BOOTSTRAP)
        topic = self.service_env.get(environment.CALLSCOPE_SPANS_TOPIC)
        return f"{bootstrap}/{topic}" if bootstrap and topic else None

    def remove(self) -> list[str]:
        """Delete what the run made on the real services (unless kept); what could not be."""
        if self.kind != "real":
            return []  # the embedded parts live in the working directory
        failed = []
        for what, remove in (("indices", self._remove_indices), ("topics", self._remove_topics),
                             ("ZooKeeper root", self._remove_root)):  # fmt: skip
            try:
                remove()
            except Exception as err:  # best effort: report, never hide the run's own result
                failed.append(f"{what}: {err}")
        return failed

    def _remove_indices(self) -> None:
        from storage import open_analytics_store, open_span_store

        with open_span_store(self.store_url) as spans:
            spans.clear()
        with open_analytics_store(self.store_url) as analytics:
            analytics.clear()

    def _remove_topics(self) -> None:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(
            bootstrap_servers=self.service_env[environment.CALLSCOPE_KAFKA_BOOTSTRAP]
        )
        try:
            mine = [t for t in admin.list_topics() if t.startswith(f"{self.run_name}.")]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()

    def _remove_root(self) -> None:
        from kazoo.client import KazooClient

        assert self.registry_url is not None
        hosts = self.registry_url.split("://", 1)[1].split("/", 1)[0]
        client = KazooClient(hosts=hosts)
        client.start(timeout=10)
        try:
            client.delete(f"/{self.run_name}", recursive=True)
        finally:
            client.stop()
            client.close()

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
        run_name=run,
    )
