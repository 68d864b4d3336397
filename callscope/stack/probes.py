"""Readiness probes: each asks a service the question its real clients depend on.

A probe returns when the service is ready and raises ``NotReady`` (with the reason) when not.
Client libraries are imported inside the probes that need them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

from callscope.stack.errors import NotReady
from callscope.stack.process import port_open
from callscope.stack.settings import HOST

PROBE_TOPIC = "callscope.stack.probe"


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence a client library's connection-refused logging while a service is booting."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _require_port(port: int) -> None:
    if not port_open(port):
        raise NotReady(f"nothing accepts connections on {HOST}:{port} yet")


def kafka(port: int) -> None:
    """The broker answers a metadata request and creates (or already has) a topic."""
    _require_port(port)
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    with _quiet("kafka"):
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=f"{HOST}:{port}", client_id="callscope-stack-probe",
                request_timeout_ms=5000,
            )  # fmt: skip
        except KafkaError as err:
            raise NotReady(f"no Kafka metadata yet: {err!r}") from err
        try:
            cluster = admin.describe_cluster()
            if not cluster.get("brokers"):
                raise NotReady("metadata lists no broker yet")
            if PROBE_TOPIC not in admin.list_topics():
                with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile
                    admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)], timeout_ms=5000)
        except KafkaError as err:
            raise NotReady(f"Kafka cannot create a topic yet: {err!r}") from err
        finally:
            admin.close()


def elasticsearch(port: int) -> None:
    """Cluster health is yellow or green."""
    _require_port(port)
    url = f"http://{HOST}:{port}/_cluster/health?timeout=2s"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = json.load(response).get("status")
    except (OSError, ValueError, urllib.error.HTTPError) as err:
        raise NotReady(f"no cluster health yet: {err}") from err
    if status not in ("yellow", "green"):
        raise NotReady(f"cluster health is {status}")


def hbase_thrift(port: int) -> None:
    """The Thrift server answers ``getTableNames`` and the master has finished initialising."""
    _require_port(port)
    import happybase

    try:
        connection = happybase.Connection(HOST, port, timeout=10000, autoconnect=True)
    except Exception as err:  # thriftpy2 raises plain TTransportException and OSError
        raise NotReady(f"Thrift connection failed: {err!r}") from err
    try:
        connection.tables()
        # Listing tables works before the master is done; the namespace table exists only
        # once it is, and only then do creates, puts and gets succeed.
        if not connection.is_table_enabled(b"hbase:namespace"):
            raise NotReady("hbase:namespace is not enabled yet")
    except NotReady:
        raise
    except Exception as err:  # an IOError from the Thrift server while the master starts
        raise NotReady(f"HBase master not ready: {err!r}") from err
    finally:
        connection.close()


def zookeeper(port: int) -> None:
    """``ruok`` gets ``imok`` and ``srvr`` reports a mode: a server whose start failed half-way
    still says ``imok`` but is "not currently serving requests"."""
    _require_port(port)
    answer = _four_letter_word(port, b"ruok")
    if answer != "imok":
        raise NotReady(f"ruok answered {answer!r}")
    stats = _four_letter_word(port, b"srvr")
    if "Mode:" not in stats:
        raise NotReady(f"srvr answered {stats.strip()!r}")


def _four_letter_word(port: int, word: bytes) -> str:
    try:
        with socket.create_connection((HOST, port), timeout=3) as sock:
            sock.sendall(word)
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError as err:
        raise NotReady(f"{word.decode()} failed: {err}") from err
    return b"".join(chunks).decode(errors="replace")
