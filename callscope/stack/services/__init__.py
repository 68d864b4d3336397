"""The stack's services by name, in the order ``callscope stack up`` starts them."""

from __future__ import annotations

from callscope.stack.recipe import Service
from callscope.stack.services.elasticsearch import Elasticsearch
from callscope.stack.services.hbase import HBase
from callscope.stack.services.kafka import Kafka
from callscope.stack.services.zookeeper import ZooKeeper

SERVICES: dict[str, type[Service]] = {
    cls.name: cls for cls in (Kafka, Elasticsearch, HBase, ZooKeeper)
}

__all__ = ["SERVICES"]
