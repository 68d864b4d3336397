"""One SparkSession for the whole test session: local[2], small memory, Kafka source on.

Spark's Kafka source jars are fetched once from Maven Central through the same code that
fetches the stack's services (``deploy/stack/spark-kafka/pom.xml``), so ``make test`` on a
fresh machine needs nothing done by hand.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from callscope.pipeline_cli import kafka_source_jars

SPARK_TIMEOUT_S = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pyspark's collect() leaves its result socket to the garbage collector (unclosed).
    here = Path(__file__).parent
    quiet = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    # The first test pays the JVM's start and the first jobs' code generation: on a busy
    # 2-core machine that alone can pass the suite's 120 s (a timeout mid-job then breaks
    # the session for every later test).
    patient = pytest.mark.timeout(SPARK_TIMEOUT_S)
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(quiet)
            item.add_marker(patient)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from pyspark import SparkContext

    from pipeline import spark_session

    session = spark_session(
        "local[2]",
        app_name="callscope-tests",
        jars=kafka_source_jars(),
        conf={
            "spark.driver.memory": "1g",
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
        },
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    # The py4j and result sockets pyspark leaves open are freed here, inside a pipeline
    # test's teardown (where the mark above applies), not at the end of the whole session.
    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        proc = getattr(gateway, "proc", None)
        if proc is not None:  # the JVM exits when its stdin closes
            proc.stdin.close()
            proc.wait(timeout=60)
        SparkContext._gateway = SparkContext._jvm = None
    gc.collect()
