"""Session fixtures for the real services: Kafka, Elasticsearch, HBase (Thrift) and ZooKeeper.

A test that needs one is marked (``@pytest.mark.kafka``, ``elasticsearch``, ``hbase``,
``zookeeper``) or asks for its endpoint fixture (``kafka_bootstrap``, ``elasticsearch_url``,
``hbase_thrift``, ``zookeeper_hosts``). Once collection is done, and before any test runs (so
outside the per-test timeout), every service a selected test needs is brought up through
``callscope.stack`` -- the code behind ``callscope stack up``: one already running (``stack up``,
``docker compose up``) is reused; one started here is stopped at the end of the session, once no
other test session on the machine still uses it (leases, see ``callscope.stack.leases``), unless
``CALLSCOPE_STACK_KEEP=1``. A service that cannot start makes its tests fail with the reason
and the log tail; they are never skipped, in CI or anywhere else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from callscope.stack import STACK_KEEP_ENV, Stack, StackError

ENDPOINT_FIXTURES = {
    "kafka": "kafka_bootstrap",
    "elasticsearch": "elasticsearch_url",
    "hbase": "hbase_thrift",
    "zookeeper": "zookeeper_hosts",
}


@dataclass
class _StackSession:
    stack: Stack
    used: list[str] = field(default_factory=list)
    errors: dict[str, StackError] = field(default_factory=dict)
    brought_up: set[str] = field(default_factory=set)

    def bring_up(self, names: list[str]) -> None:
        names = [n for n in names if n not in self.brought_up]
        if not names:
            return
        self.brought_up.update(names)
        try:
            results = self.stack.use(names)
        except StackError as err:  # e.g. an unknown name, before any service
            self.errors.update({n: err for n in names})
            return
        for result in results:
            if result.error:
                self.errors[result.name] = result.error
            else:
                self.used.append(result.name)

    def endpoint(self, name: str) -> str:
        self.bring_up([name])
        if name in self.errors:
            pytest.fail(f"the real {name} could not be started: {self.errors[name]}", pytrace=False)
        (value,) = self.stack.env([name]).values()
        return value


_KEY = pytest.StashKey[_StackSession]()


def _session(config: pytest.Config) -> _StackSession:
    if _KEY not in config.stash:
        reporter = config.pluginmanager.get_plugin("terminalreporter")

        def report(text: str) -> None:
            if reporter is not None:
                reporter.write(text, flush=True)

        config.stash[_KEY] = _StackSession(Stack(report=report))
    return config.stash[_KEY]


def _needed(item: pytest.Item) -> list[str]:
    return [
        name
        for name, fixture in ENDPOINT_FIXTURES.items()
        if item.get_closest_marker(name) or fixture in getattr(item, "fixturenames", ())
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark users of an endpoint fixture too, so ``-m kafka`` selects every Kafka test."""
    for item in items:
        for name in _needed(item):
            if not item.get_closest_marker(name):
                item.add_marker(name)
        if item.get_closest_marker("kafka"):
            item.add_marker(KAFKA_PYTHON_SOCKET_LEAK)


# kafka-python 3.0 (kafka/net/inet.py, connect/sock_connect) does not close the socket of a
# refused connection attempt; the garbage collector closes it later, in whichever test runs
# then, and pytest turns that ResourceWarning into an error. Tolerated only in Kafka tests,
# and only for a socket that never connected (its local address is 0.0.0.0).
KAFKA_PYTHON_SOCKET_LEAK = pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <socket\.socket fd=\d+, family=\d+, type=\d+, proto=\d+,"
    r" laddr=\('0\.0\.0\.0':pytest.PytestUnraisableExceptionWarning"
)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    needed = {name for item in session.items for name in _needed(item)}
    if needed:
        order = [name for name in ENDPOINT_FIXTURES if name in needed]
        _session(session.config).bring_up(order)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_KEY, None)
    if state and state.used and os.environ.get(STACK_KEEP_ENV) != "1":
        state.stack.report("\n")
        state.stack.release(state.used)


@pytest.fixture(autouse=True)
def _real_services(request: pytest.FixtureRequest) -> None:
    """Fail a marked test whose service could not start (even if it never asks the endpoint)."""
    for name in ENDPOINT_FIXTURES:
        if request.node.get_closest_marker(name):
            _session(request.config).endpoint(name)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """``host:port`` of a real Kafka 4 broker (KRaft)."""
    return _session(request.config).endpoint("kafka")


@pytest.fixture(scope="session")
def elasticsearch_url(request: pytest.FixtureRequest) -> str:
    """``http://host:port`` of a real single-node Elasticsearch 8."""
    return _session(request.config).endpoint("elasticsearch")


@pytest.fixture(scope="session")
def hbase_thrift(request: pytest.FixtureRequest) -> str:
    """``host:port`` of a real HBase 2 Thrift (v1) server, as happybase expects."""
    return _session(request.config).endpoint("hbase")


@pytest.fixture(scope="session")
def zookeeper_hosts(request: pytest.FixtureRequest) -> str:
    """``host:port`` of a real ZooKeeper 3.9 server, as kazoo's ``hosts`` expects."""
    return _session(request.config).endpoint("zookeeper")
