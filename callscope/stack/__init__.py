"""Real Kafka, Elasticsearch, HBase (+ Thrift) and ZooKeeper on 127.0.0.1, without Docker.

``Stack().up()`` fetches each distribution once from Maven Central, starts it with a small
heap, waits until it truly answers, and records PIDs; ``Stack().down()`` stops those PIDs.
The CLI (``callscope stack``) and the pytest fixtures (``tests/conftest.py``) both use it.
"""

from __future__ import annotations

from callscope.stack.errors import StackError
from callscope.stack.model import ServiceStatus, UpResult
from callscope.stack.services import SERVICES
from callscope.stack.settings import (
    ELASTICSEARCH_URL_ENV,
    HBASE_THRIFT_ENV,
    KAFKA_BOOTSTRAP_ENV,
    STACK_DIR_ENV,
    STACK_KEEP_ENV,
    STACK_TIMEOUT_ENV,
    ZOOKEEPER_ENV,
    StackPaths,
)
from callscope.stack.stack import Stack

__all__ = [
    "ELASTICSEARCH_URL_ENV",
    "HBASE_THRIFT_ENV",
    "KAFKA_BOOTSTRAP_ENV",
    "SERVICES",
    "STACK_DIR_ENV",
    "STACK_KEEP_ENV",
    "STACK_TIMEOUT_ENV",
    "ZOOKEEPER_ENV",
    "ServiceStatus",
    "Stack",
    "StackError",
    "StackPaths",
    "UpResult",
]
