"""``callscope pipeline batch|stream``: the Spark jobs from the shell.

Also runs under ``spark-submit`` (the file is a script): ``spark-submit --master
spark://HOST:7077 --packages org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0
callscope/pipeline_cli.py batch --source kafka://HOST:9092/callscope.spans --from 1h``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from callscope_contract.environment import CALLSCOPE_SPARK_MASTER, CALLSCOPE_STORE

if TYPE_CHECKING:
    from pipeline import AlarmJob

DEFAULT_STORE = "sqlite://callscope.db"
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="run the Spark analytics jobs (batch)")
    jobs = p.add_subparsers(dest="job", metavar="JOB", required=True)
    b = jobs.add_parser(
        "batch",
        help="dependency graph, top callers and latency for a time range",
        description="Reads the spans that started in [--from, --to) from --source, computes per "
        "window the dependency graph (service, instance, method), the top callers of each "
        "service and the latency of each service and method, and writes them to every --store "
        "(re-running a window overwrites it).",
    )
    store = os.environ.get(CALLSCOPE_STORE, DEFAULT_STORE)
    b.add_argument("--source", default=store,
                   help="kafka://HOST:PORT/TOPIC, sqlite://PATH, elasticsearch://HOST:PORT, "
                   f"hbase://HOST:PORT or file://PATH (default: the store, {store})")  # fmt: skip
    b.add_argument("--from", dest="start", required=True,
                   help="start: 1h (ago), an ISO time (UTC if no zone) or µs")  # fmt: skip
    b.add_argument("--to", dest="end", default=None, help="end, exclusive (default: now)")
    b.add_argument("--window", type=int, default=3600, metavar="S",
                   help="window length in seconds; windows are aligned on the epoch")  # fmt: skip
    b.add_argument("--top", type=int, default=10, metavar="N", help="top callers per service")
    b.add_argument("--store", action="append", default=None, metavar="URL",
                   help=f"analytics store to write (repeatable; default ${CALLSCOPE_STORE} "
                   f"or {DEFAULT_STORE})")  # fmt: skip
    b.add_argument("--master", default=None,
                   help=f"Spark master (${CALLSCOPE_SPARK_MASTER}, else local[*])")  # fmt: skip
    b.add_argument("--partitions", type=int, default=None,
                   help="time slices a store is read in (default: parallelism)")  # fmt: skip
    b.add_argument("--alarms", default=None, metavar="FILE",
                   help="alarm rules (JSON) evaluated on every window's latency")  # fmt: skip
    b.set_defaults(handler=batch)

    st = jobs.add_parser(
        "stream",
        help="per-window dependency edges and provider health from Kafka, fed back as "
        "routing weights",
        description="Structured Streaming over the spans topic: per tumbling window, the "
        "dependency edges (as the batch job computes them) and, per (RPC service, instance), "
        "calls, errors and latency are written to every --store and, with --registry, turned "
        "into governance/<service>/weights. "
        "Checkpointed: a restart neither loses nor double-counts a window.",
    )
    st.add_argument("--source", required=True, help="kafka://HOST:PORT[/TOPIC]")
    st.add_argument("--window", type=int, default=60, metavar="S", help="window length (>= 5 s)")
    st.add_argument("--watermark", type=int, default=None, metavar="S",
                    help="how late a span may reach Kafka (default: half a window, "
                    "at most 10 s)")  # fmt: skip
    st.add_argument("--trigger", type=_seconds, default=None, metavar="S",
                    help="seconds between micro-batches, 0: one after the other (default: "
                    "a twentieth of the window, within 1 and 5)")  # fmt: skip
    st.add_argument("--checkpoint", default=str(Path.home() / ".local/state/callscope/stream"),
                    help="checkpoint directory (offsets and open windows)")  # fmt: skip
    st.add_argument("--store", action="append", default=None, metavar="URL",
                    help="analytics store to write (repeatable)")  # fmt: skip
    st.add_argument("--registry", default=None, help="registry URL to write the weights to")
    st.add_argument("--master", default=None, help="Spark master")
    st.add_argument("--alarms", default=None, metavar="FILE",
                    help="alarm rules (JSON); with --registry, its "
                    "governance/_global/alarms too")  # fmt: skip
    st.add_argument("--partitions", type=_partition_count, default=None, metavar="N",
                    help="partitions of the window state and of each window's joins (default "
                    "8; a checkpoint keeps the number it was created with)")  # fmt: skip
    st.add_argument("--available-now", action="store_true",
                    help="process what the topic holds, then stop")  # fmt: skip
    st.set_defaults(handler=stream)


def parse_time(text: str, now: float | None = None) -> int:
    """``1h``/``15m`` ago, an ISO 8601 time (UTC when it names no zone), or µs since the epoch."""
    now = time.time() if now is None else now
    if text.isdigit():
        return int(text)
    match = _AGO.match(text)
    if match:
        return int((now - float(match.group(1)) * _UNIT_S[match.group(2)]) * 1_000_000)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"a time is 1h (ago), an ISO time like 2026-11-30T10:00 or µs; not {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1_000_000)


def batch(args: argparse.Namespace) -> int:
    from pipeline import PipelineError, run_batch, spark_session
    from storage import StorageError

    start = parse_time(args.start)
    end = parse_time(args.end) if args.end else int(time.time() * 1_000_000)
    stores = args.store or [os.environ.get(CALLSCOPE_STORE, DEFAULT_STORE)]
    jars = kafka_source_jars() if args.source.startswith("kafka://") else []
    say = _printer()
    say(f"pipeline batch: {args.source} [{_iso(start)}, {_iso(end)}) -> {', '.join(stores)}")
    try:
        alarms = _alarm_job(args.alarms)
        spark = spark_session(args.master, app_name="callscope-pipeline-batch", jars=jars)
        run_batch(spark, args.source, start, end, stores=stores, window_s=args.window,
                  top_n=args.top, partitions=args.partitions, alarms=alarms,
                  report=say)  # fmt: skip
    except PipelineError as err:
        print(f"callscope pipeline: {err.code}: {err.message}", file=sys.stderr)
        return 2
    except StorageError as err:
        print(f"callscope pipeline: a store failed: {err}", file=sys.stderr)
        return 1
    return 0


def kafka_source_jars() -> list[str]:
    """Spark's Kafka source (``deploy/stack/spark-kafka/pom.xml``), fetched once from Maven
    Central into the stack's cache, like the stack's services."""
    from callscope.stack.fetch import Artifact, ensure_fetched
    from callscope.stack.settings import StackPaths

    def report(text: str) -> None:
        sys.stderr.write(text)

    home = ensure_fetched(Artifact("spark-kafka"), StackPaths.default().dist, report)
    return sorted(str(p) for p in (Path(home) / "lib").glob("*.jar"))


def stream(args: argparse.Namespace) -> int:
    from pipeline import PipelineError, run_stream, spark_session

    stores = args.store or [os.environ.get(CALLSCOPE_STORE, DEFAULT_STORE)]
    say = _printer()
    registry = None
    if args.registry:
        import rpc.registry

        registry = rpc.registry.connect(args.registry)
    try:
        alarms = _alarm_job(args.alarms, registry)
    except PipelineError as err:
        if registry is not None:
            registry.close()
        print(f"callscope pipeline: {err.code}: {err.message}", file=sys.stderr)
        return 2
    spark = spark_session(args.master, app_name="callscope-pipeline-stream",
                          jars=kafka_source_jars(), conf=_partitions(args.partitions))  # fmt: skip
    say(f"Spark UI: {spark.sparkContext.uiWebUrl}")
    try:
        query = run_stream(spark, args.source, args.checkpoint, stores=stores,
                           registry=registry, window_s=args.window, watermark_s=args.watermark,
                           available_now=args.available_now, trigger_s=args.trigger,
                           alarms=alarms, report=say)  # fmt: skip
        query.awaitTermination()
    except PipelineError as err:
        print(f"callscope pipeline: {err.code}: {err.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        say("stopping (the checkpoint keeps the open windows)")
        for active in spark.streams.active:
            active.stop()
    finally:
        if registry is not None:
            registry.close()
    return 0


def _alarm_job(path: str | None, registry: object = None) -> AlarmJob | None:
    """The jobs' alarm rules: the file's and, with a registry, its alarms document's."""
    from pipeline import AlarmJob, load_rules

    if path is None and registry is None:
        return None
    return AlarmJob(load_rules(path) if path else [], registry)


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86_400:  # NaN too
        raise argparse.ArgumentTypeError(f"seconds within 0..86400, not {text}")
    return value


def _partition_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= 10_000:
        raise argparse.ArgumentTypeError(f"within 1..10000, not {text}")
    return count


def _partitions(count: int | None) -> dict[str, str]:
    return {} if count is None else {"spark.sql.shuffle.partitions": str(count)}


def _printer():  # type: ignore[no-untyped-def]
    began = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {line}", flush=True)

    return say


def _iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat(timespec="seconds")


if __name__ == "__main__":  # spark-submit callscope/pipeline_cli.py batch ...
    from callscope.cli import main

    sys.exit(main(["pipeline", *sys.argv[1:]]))
