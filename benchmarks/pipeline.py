"""The batch job's throughput on generated spans, beside plain Python over the same spans.

    python benchmarks/pipeline.py --spans 1000000            # local[2]

Spans are generated (a seeded walk of a known call graph: tests/pipeline/traces.py) in
chunks of whole traces and written as JSON lines, outside the timing (10M spans would not
fit in memory as records; as JSON they take ~3.9 GB of /tmp). Then, timed: the batch job
(``pipeline.run_batch``: dependency graph at three levels, top callers, latency rollups,
call paths and critical-path shares, one-minute windows; results kept in memory, no
store) on Spark ``local[2]``, and the named peer, the independent computation the tests
hold the job to (plain CPython: calls derived and counted per service edge and window, no
percentiles), over the same records, chunk by chunk as they are generated (only its
counting is timed). The ratio is Spark's time over plain Python's: Spark pays a JVM, JSON
parsing and shuffles, and wins only when the spans outgrow one process.
The last line is JSON: ``spans``, ``batch_seconds``, ``spans_per_s``, ``python_seconds``,
``ratio_batch_to_python``, ``edges``.

    python benchmarks/pipeline.py --spans 200000 --loop      # + the closed loop, real Kafka

``--loop`` also runs the closed loop once (``callscope.demo.loop``: three provider
processes behind a consumer, the streaming job in 5 s windows on Kafka from ``callscope
stack``, one provider slowed by 200 ms, then recovered) and reports
``loop_windows_to_shift`` (the windows after the slowdown until its share of the calls
fell to 30% of what it was), ``loop_shift_s``, ``loop_recover_s`` and the streaming
job's ``freshness_s`` (a window's first span until its edges are readable in the store,
median; with ``freshness_window_s`` windows); without it they are null.

    python benchmarks/pipeline.py --spans 1000 --freshness-window 60   # streaming freshness

``--freshness-window W`` runs the streaming job alone (``callscope.demo.freshness``: the
CLI with its default watermark, ``--freshness-watermark`` to set one) on Kafka while calls
are produced steadily, for ``--freshness-windows`` whole windows of W s, and reports
``freshness_s`` as the worst case -- a window's first span until its edges are readable in
the store -- as the median over the windows (``freshness_max_s`` the largest,
``freshness_span_median_s`` the median over every span, ``freshness_watermark_s``;
``freshness_quiet_s``: the same for the window in progress when production then stops,
closed by the job's clock ticks alone; ``freshness_trigger_s``, ``--freshness-trigger``
to set it; ``freshness_job_cpu_cores``: the job's CPU seconds a second over the measured
windows); it takes the place of the loop's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is benchmarks/pipeline.py: keep its folder off the path, or `import pipeline`
# would import this script instead of the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from pipeline import run_batch, spark_session  # noqa: E402
from tests.pipeline.traces import W_US, generate_chunks, json_lines, plain_calls  # noqa: E402

BASE_US = 1_764_150_000_000_000 - 1_764_150_000_000_000 % W_US
SPANS_PER_TRACE = 7.75  # the generator's mean, to size the trace count


def write_spans(traces: int, minutes: int, folder: Path, files: int) -> tuple[int, Counter, float]:
    """Generated spans as JSON lines in ``files`` files of equal size (each chunk's spans
    dealt round-robin: a trace's spans spread over the files, as they arrive at a
    collector), and plain Python's service edges over each chunk: (spans, edges, seconds
    counting them)."""
    outs = [(folder / f"spans-{i}.jsonl").open("wb") for i in range(files)]
    spans, edges, python_s = 0, Counter(), 0.0
    try:
        for chunk in generate_chunks(traces, BASE_US, minutes * W_US):
            for i, out in enumerate(outs):
                out.write(json_lines(chunk[i::files]))
            spans += len(chunk)
            began = time.perf_counter()
            edges.update((c[5], c[0], c[2]) for c in plain_calls(chunk))
            python_s += time.perf_counter() - began
    finally:
        for out in outs:
            out.close()
    return spans, edges, python_s


def stack_kafka() -> str:
    """The stack's Kafka (started if it is not running): its bootstrap address."""
    from callscope.stack import Stack
    from callscope_contract.environment import CALLSCOPE_KAFKA_BOOTSTRAP

    stack = Stack()
    stack.up(["kafka"])
    return stack.env(["kafka"])[CALLSCOPE_KAFKA_BOOTSTRAP]


def closed_loop():  # type: ignore[no-untyped-def]
    """One run of the closed loop on the stack's Kafka."""
    from callscope.demo.loop import run_closed_loop

    with tempfile.TemporaryDirectory(prefix="callscope-loop-") as folder:
        return run_closed_loop(
            stack_kafka(), Path(folder), report=lambda line: print(f"  loop: {line}")
        )


def freshness(window_s: int, windows: int, watermark_s: int | None,
              trigger_s: float | None) -> dict:  # fmt: skip
    """The streaming job's freshness in ``window_s`` windows, on the stack's Kafka."""
    from callscope.demo.freshness import measure_freshness

    with tempfile.TemporaryDirectory(prefix="callscope-fresh-") as folder:
        out = measure_freshness(stack_kafka(), Path(folder), window_s=window_s,
                                windows=windows, watermark_s=watermark_s,
                                trigger_s=trigger_s,
                                report=lambda line: print(f"  freshness: {line}"))  # fmt: skip
    print(f"  freshness: per window {out.worst_s} s (first span → edges readable)")
    return {"freshness_s": out.freshness_s, "freshness_window_s": out.window_s,
            "freshness_max_s": out.freshness_max_s,
            "freshness_span_median_s": out.span_median_s,
            "freshness_watermark_s": out.watermark_s,
            "freshness_trigger_s": out.trigger_s, "freshness_quiet_s": out.quiet_s,
            "freshness_job_cpu_cores": out.job_cpu_cores}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000, help="about this many spans")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--minutes", type=int, default=10, help="time the spans spread over")
    parser.add_argument("--loop", action="store_true", help="also run the closed loop (Kafka)")
    parser.add_argument("--files", type=int, default=4, help="JSON-lines files to write")
    parser.add_argument(
        "--driver-memory",
        default="8g",
        help="the Spark driver's heap (local mode: the executors' too), if this run starts Spark",
    )
    parser.add_argument("--freshness-window", type=int, default=None, metavar="S",
                        help="also the streaming job's freshness, S s windows")  # fmt: skip
    parser.add_argument("--freshness-windows", type=int, default=3, metavar="N",
                        help="whole windows measured (default 3)")  # fmt: skip
    parser.add_argument("--freshness-watermark", type=int, default=None, metavar="S",
                        help="the job's --watermark (default: its own)")  # fmt: skip
    parser.add_argument("--freshness-trigger", type=float, default=None, metavar="S",
                        help="the job's --trigger (default: its own)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.spans < 100 or args.minutes < 1 or args.files < 1:
        parser.error("--spans >= 100, --minutes >= 1 and --files >= 1")
    if args.freshness_window is not None and not (
        args.freshness_window >= 5 and 1 <= args.freshness_windows <= 20
    ):
        parser.error("--freshness-window >= 5 and 1 <= --freshness-windows <= 20")
    traces = max(1, int(args.spans / SPANS_PER_TRACE))
    with tempfile.TemporaryDirectory(prefix="callscope-bench-") as folder:
        began = time.monotonic()
        spans, edges, python_s = write_spans(traces, args.minutes, Path(folder), args.files)
        print(f"generated and wrote {spans} spans ({traces} traces) "
              f"in {time.monotonic() - began:.1f} s", flush=True)  # fmt: skip
        spark = spark_session(args.master, app_name="callscope-bench",
                              conf={"spark.driver.memory": args.driver_memory})  # fmt: skip
        spark.sparkContext.setLogLevel("ERROR")
        end = BASE_US + (args.minutes + 1) * W_US
        began = time.monotonic()

        def report(line: str) -> None:
            print(f"  {time.monotonic() - began:6.1f} s  batch: {line}", flush=True)

        result = run_batch(
            spark, f"file://{folder}", BASE_US, end, window_s=W_US // 10**6, report=report
        )
        batch_s = time.monotonic() - began
    service_edges = {(e.window_start_us, e.caller, e.callee): e.calls for e in result.edges
                     if e.level == "service"}  # fmt: skip
    if service_edges != dict(edges):
        raise SystemExit("the batch job and plain Python disagree on the edges' counts")
    summary = {
        "spans": spans,
        "batch_seconds": round(batch_s, 2),
        "spans_per_s": round(spans / batch_s),
        "python_seconds": round(python_s, 2),
        "ratio_batch_to_python": round(batch_s / python_s, 2),
        "edges": len(service_edges),
        "freshness_s": None,
        "loop_windows_to_shift": None,
        "loop_shift_s": None,
        "loop_recover_s": None,
    }
    if args.loop:
        loop = closed_loop()
        summary.update(loop_windows_to_shift=loop.windows_to_shift, loop_shift_s=loop.shift_s,
                       loop_recover_s=loop.recover_s, freshness_s=loop.freshness_s,
                       freshness_window_s=loop.window_s)  # fmt: skip
    if args.freshness_window is not None:
        summary.update(freshness(args.freshness_window, args.freshness_windows,
                                 args.freshness_watermark, args.freshness_trigger))  # fmt: skip
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
