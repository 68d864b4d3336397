"""``read_spans``: the spans that started in a window, from any source, as a DataFrame.

Every source answers with the contract's columns (``callscope_contract.span_schema()``),
so a job -- ours or a user's notebook -- does not care where the spans were kept:

``kafka://HOST:PORT[,HOST:PORT]/TOPIC``  the topic (default ``callscope.spans``), read with
    Spark's own Kafka source from the offsets whose timestamps bracket the window
``sqlite://PATH``, ``elasticsearch://HOST:PORT``, ``hbase://HOST:PORT``  a span store (any
    ``storage`` backend), scanned in time slices by the executors
``file://PATH``  JSON-lines span files (the archive; a file, a folder or a glob, gzip read
    as such), as the collector's dead letters and exports are written

A span delivered twice (Kafka and the archive are at-least-once) counts once: the rows
are shuffled by ``trace_id`` and deduplicated on (``trace_id``, ``span_id``), so each
trace's spans end in one partition -- a job that then works per trace (pairs a CLIENT
span with its SERVER child, walks a trace) needs no further shuffle. ``columns=`` keeps
only the columns a job reads: JSON is then parsed for those alone, which is most of the
reading's cost (Jackson still walks each line, but builds no maps or lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from callscope_contract import SPANS_TOPIC, span_row, span_schema

from ._errors import PipelineError
from ._window import TimeLike, Window, window

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

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
    columns: Sequence[str] | None = None,
) -> DataFrame:
    """Spans that started in ``[start, end)`` (µs since the epoch, or datetimes), each
    once, partitioned by ``trace_id``.

    ``partitions``: how many slices a store scan is cut into (default: the session's
    parallelism). ``lateness_s``: on Kafka, how long after ``end`` a span may still have
    been sent (the spool replays spans held back while Kafka was away); later ones are
    not read. ``columns``: only these of the contract's columns, in the contract's order
    (default: all of them).
    """
    span = window(start, end)
    schema = _narrowed(columns)
    scheme = urlsplit(source).scheme if "://" in source else ""
    if not scheme:
        raise PipelineError(
            "BAD_SOURCE",
            f"a span source is a URL (kafka://, sqlite://, elasticsearch://, hbase://, "
            f"file://), not {source!r}",
        )
    if scheme == "kafka":
        frame = _from_kafka(spark, source, span, lateness_s, schema)
    elif scheme == "file":
        frame = _from_files(spark, source.split("://", 1)[1], schema)
    else:
        frame = _from_store(spark, source, span, partitions).select(*schema.fieldNames())
    frame = _once(_in_window(_with_optional_lists(frame), span))
    return frame.select(*(c for c in schema.fieldNames() if columns is None or c in columns))


def _once(frame: DataFrame) -> DataFrame:
    """Each (``trace_id``, ``span_id``) once, partitioned by ``trace_id``: one shuffle
    serves the deduplication and every later step done per trace. The first row of each
    key in a sort, not ``dropDuplicates``: its aggregate keeps every other column in a
    buffer and costs twice as much."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = Window.partitionBy("trace_id", "span_id").orderBy("span_id")
    ranked = frame.repartition("trace_id").withColumn("_n", F.row_number().over(key))
    return ranked.where(F.col("_n") == 1).drop("_n")


def _narrowed(columns: Sequence[str] | None) -> StructType:
    """The contract's schema, cut to ``columns`` and what reading needs (the required
    fields, checked on every row)."""
    from pyspark.sql.types import StructType

    full = span_schema()
    if columns is None:
        return full
    unknown = sorted(set(columns) - set(full.fieldNames()))
    if unknown or not columns:
        raise PipelineError(
            "BAD_OPTION", f"columns must be some of {full.fieldNames()}, not {unknown or '[]'}"
        )
    kept = {*columns, *REQUIRED}
    return StructType([f for f in full.fields if f.name in kept])


def _in_window(frame: DataFrame, span: Window) -> DataFrame:
    from pyspark.sql import functions as F

    complete: Column = F.lit(True)
    for name in REQUIRED:
        complete = complete & F.col(name).isNotNull()
    start = F.col("start_us")
    return frame.where(complete & (start >= span.start_us) & (start < span.end_us))


# -- Kafka ----------------------------------------------------------------------------------
def _from_kafka(
    spark: SparkSession, source: str, span: Window, lateness_s: float, schema: StructType
) -> DataFrame:
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
    parsed = raw.select(F.from_json(F.col("value").cast("string"), schema).alias("s"))
    return parsed.select("s.*")


def _with_optional_lists(frame: DataFrame) -> DataFrame:
    """Spans parsed from JSON: an absent ``events`` or ``links`` (optional in the contract;
    the C path and a span with no links leave the key out) is an empty list, as a store's
    rows have it, so every source answers alike."""
    from pyspark.sql import functions as F

    for name in ("events", "links"):
        if name not in frame.columns:
            continue
        column, kind = F.col(name), frame.schema[name].dataType
        # when/otherwise, not coalesce: the column stays nullable, as the contract's schema says
        frame = frame.withColumn(
            name, F.when(column.isNull(), F.array().cast(kind)).otherwise(column)
        )
    return frame


# -- archive files --------------------------------------------------------------------------
def _from_files(spark: SparkSession, path: str, schema: StructType) -> DataFrame:
    if not path:
        raise PipelineError("BAD_SOURCE", "file://PATH needs a path")
    return spark.read.schema(schema).option("mode", "PERMISSIVE").json(path)


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
