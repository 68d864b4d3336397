"""``read_spans``: the spans that started in a window, from any source, as a DataFrame.

Every source answers with the contract's columns (``callscope_contract.span_schema()``),
so a job -- ours or a user's notebook -- does not care where the spans were kept:

``kafka://HOST:PORT[,HOST:PORT]/TOPIC``  the topic (default ``callscope.spans``), read with
    Spark's own Kafka source from the offsets whose timestamps bracket the window
``sqlite://PATH``, ``elasticsearch://HOST:PORT``, ``hbase://HOST:PORT``  a span store (any
    ``storage`` backend), scanned in time slices by the executors
``file://PATH``  JSON-lines span files (the archive; a file, a folder or a glob, gzip read
    as such), as the collector's dead letters and exports are written
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from callscope_contract import SPANS_TOPIC, span_row, span_schema

from ._errors import PipelineError
from ._window import TimeLike, Window, window

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["read_spans"]

REQUIRED = ("trace_id", "span_id", "name", "kind", "service", "start_us", "duration_us")
CLOCK_SKEW_US = 60_000_000
"""How far a producer's clock may run behind the span's: Kafka offsets are looked up by
the message timestamp, which is the exporter's clock at send time."""


def read_spans(
    spark: SparkSession,
    source: str,
    start: TimeLike,
    end: TimeLike,
    *,
    partitions: int | None = None,
    lateness_s: float = 600.0,
) -> DataFrame:
    """Spans that started in ``[start, end)`` (µs since the epoch, or datetimes).

    ``partitions``: how many slices a store scan is cut into (default: the session's
    parallelism). ``lateness_s``: on Kafka, how long after ``end`` a span may still have
    been sent (the spool replays spans held back while Kafka was away); later ones are
    not read.
    """
    span = window(start, end)
    scheme = urlsplit(source).scheme if "://" in source else ""
    if not scheme:
        raise PipelineError(
            "BAD_SOURCE",
            f"a span source is a URL (kafka://, sqlite://, elasticsearch://, hbase://, "
            f"file://), not {source!r}",
        )
    if scheme == "kafka":
        frame = _from_kafka(spark, source, span, lateness_s)
    elif scheme == "file":
        frame = _from_files(spark, source.split("://", 1)[1])
    else:
        frame = _from_store(spark, source, span, partitions)
    return _in_window(frame, span)


def _in_window(frame: DataFrame, span: Window) -> DataFrame:
    from pyspark.sql import functions as F

    complete: Column = F.lit(True)
    for name in REQUIRED:
        complete = complete & F.col(name).isNotNull()
    start = F.col("start_us")
    return frame.where(complete & (start >= span.start_us) & (start < span.end_us))


# -- Kafka ----------------------------------------------------------------------------------
def _from_kafka(spark: SparkSession, source: str, span: Window, lateness_s: float) -> DataFrame:
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    from ._session import KAFKA_PACKAGE

    rest = source.split("://", 1)[1]
    bootstrap, _, topic = rest.partition("/")
    if not bootstrap:
        raise PipelineError("BAD_SOURCE", f"kafka://HOST:PORT/TOPIC needs a host: {source!r}")
    if not lateness_s >= 0:  # also refuses NaN
        raise PipelineError("BAD_OPTION", f"lateness_s must be >= 0, not {lateness_s}")
    reader = (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic or SPANS_TOPIC)
        .option("startingTimestamp", str((span.start_us - CLOCK_SKEW_US) // 1000))
        .option("startingOffsetsByTimestampStrategy", "latest")
        .option("endingTimestamp", str(span.end_us // 1000 + int(lateness_s * 1000)))
        .option("failOnDataLoss", "false")
    )
    try:
        raw = reader.load()
    except AnalysisException as exc:
        if "kafka" in str(exc).lower() and "data source" in str(exc).lower():
            raise PipelineError(
                "KAFKA_SOURCE_MISSING",
                "this Spark session has no Kafka source: start it with "
                f"spark.jars.packages={KAFKA_PACKAGE} (spark-submit --packages), or the jars "
                "in CALLSCOPE_SPARK_JARS (callscope pipeline fetches them itself)",
            ) from None
        raise
    parsed = raw.select(F.from_json(F.col("value").cast("string"), span_schema()).alias("s"))
    return _with_optional_lists(parsed.select("s.*")).dropDuplicates(["trace_id", "span_id"])


def _with_optional_lists(frame: DataFrame) -> DataFrame:
    """Spans parsed from JSON: an absent ``events`` or ``links`` (optional in the contract;
    the C path and a span with no links leave the key out) is an empty list, as a store's
    rows have it, so every source answers alike."""
    from pyspark.sql import functions as F

    for name in ("events", "links"):
        column, kind = F.col(name), frame.schema[name].dataType
        # when/otherwise, not coalesce: the column stays nullable, as the contract's schema says
        frame = frame.withColumn(
            name, F.when(column.isNull(), F.array().cast(kind)).otherwise(column)
        )
    return frame


# -- archive files --------------------------------------------------------------------------
def _from_files(spark: SparkSession, path: str) -> DataFrame:
    if not path:
        raise PipelineError("BAD_SOURCE", "file://PATH needs a path")
    frame = spark.read.schema(span_schema()).option("mode", "PERMISSIVE").json(path)
    return _with_optional_lists(frame).dropDuplicates(["trace_id", "span_id"])


# -- span stores ----------------------------------------------------------------------------
def _from_store(spark: SparkSession, url: str, span: Window, partitions: int | None) -> DataFrame:
    import storage

    try:  # on the driver first, so a wrong URL or a store that is down fails here, clearly
        storage.open_span_store(url).close()
    except storage.BadQuery as exc:
        raise PipelineError("BAD_SOURCE", str(exc)) from None
    count = partitions or spark.sparkContext.defaultParallelism
    if count < 1:
        raise PipelineError("BAD_OPTION", f"partitions must be >= 1, not {count}")
    slices = span.slices(count)
    rows = spark.sparkContext.parallelize(slices, len(slices)).flatMap(_StoreSlice(url))
    return spark.createDataFrame(rows, span_schema(), verifySchema=False)  # rows: span_row


class _StoreSlice:
    """Runs in an executor: one time slice of a store, as rows (picklable, no closure)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, piece: Window):  # type: ignore[no-untyped-def]
        import storage

        store = storage.open_span_store(self.url)
        try:
            for record in store.scan_spans(piece.start_us, piece.end_us):
                yield span_row(record)
        finally:
            store.close()
