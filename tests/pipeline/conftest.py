"""One SparkSession for the whole test session: local[2], small memory, Kafka source on.

Spark's Kafka source jars are fetched once from Maven Central through the same code that
fetches the stack's services (``deploy/stack/spark-kafka/pom.xml``), so ``make test`` on a
fresh machine needs nothing done by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callscope.stack.fetch import Artifact, ensure_fetched
from callscope.stack.settings import StackPaths


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pyspark's collect() leaves its result socket to the garbage collector (unclosed).
    here = Path(__file__).parent
    quiet = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(quiet)


def kafka_source_jars() -> list[str]:
    home = ensure_fetched(Artifact("spark-kafka"), StackPaths.default().dist, sys.stderr.write)
    return sorted(str(p) for p in (Path(home) / "lib").glob("*.jar"))


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
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
