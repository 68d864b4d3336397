"""A SparkSession set up for the pipeline's jobs, on any master.

``local[*]`` by default (``CALLSCOPE_SPARK_MASTER`` or ``master=`` to change it:
``spark://host:7077``, ``yarn``, ``k8s://...``). Python workers run this interpreter
in local mode, so they import the same callscope and pyspark. Times are UTC.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from callscope_contract import environment

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["DEFAULT_MASTER", "KAFKA_PACKAGE", "spark_session"]

DEFAULT_MASTER = "local[*]"
KAFKA_PACKAGE = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
"""Spark's own Kafka source at the pinned pyspark's version (for ``spark-submit --packages``)."""

_IN_SPARK_SUBMIT = "PYSPARK_GATEWAY_PORT"  # set for a Python driver that spark-submit started
_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",  # window aggregates are small; 200 tasks cost more
}


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "callscope-pipeline",
    jars: Sequence[str] = (),
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """The active session, or a new one on ``master`` with ``jars`` on its classpath.

    ``master`` defaults to ``CALLSCOPE_SPARK_MASTER``, else ``local[*]`` -- except under
    ``spark-submit``, whose ``--master`` is then kept.

    ``jars`` are added to those of ``CALLSCOPE_SPARK_JARS`` (comma-separated); ``conf``
    overrides the defaults (UTC, 8 shuffle partitions).
    """
    from pyspark.sql import SparkSession

    master = master or os.environ.get(environment.CALLSCOPE_SPARK_MASTER)
    if not master and _IN_SPARK_SUBMIT not in os.environ:
        master = DEFAULT_MASTER  # under spark-submit, its --master stands
    from_env = os.environ.get(environment.CALLSCOPE_SPARK_JARS, "")
    all_jars = [j for j in (*jars, *from_env.split(",")) if j]
    settings = dict(_DEFAULTS)
    if master and master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers see our packages
        settings["spark.driver.host"] = "127.0.0.1"  # one machine: stay on loopback
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    if all_jars:
        settings["spark.jars"] = ",".join(all_jars)
    settings.update(conf or {})
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
