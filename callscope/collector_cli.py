"""``callscope collector``: run the collector (Kafka / spool / OTLP -> a store) until signalled."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping

from callscope_contract import KPIS_TOPIC, SPANS_DLQ_TOPIC, SPANS_TOPIC
from callscope_contract.environment import (
    CALLSCOPE_KAFKA_BOOTSTRAP,
    CALLSCOPE_SPOOL_DIR,
    CALLSCOPE_STORE,
)

from ._summary import DEFAULT_INTERVAL_S, IntervalSummary, interval_seconds

log = logging.getLogger("callscope.collector")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collector",
        help="consume spans and KPIs (Kafka, spool, OTLP/HTTP, OTLP/gRPC) into a store",
        description="Sources: Kafka (--kafka or CALLSCOPE_KAFKA_BOOTSTRAP), the spool "
        "(--spool or CALLSCOPE_SPOOL_DIR, when no Kafka), OTLP/HTTP POST /v1/traces "
        "(/metrics on the same port) and OTLP/gRPC.",
    )
    p.add_argument("--store", default=os.environ.get(CALLSCOPE_STORE, "sqlite://callscope.db"),
                   help="span store URL: sqlite://PATH, elasticsearch://HOST:PORT, "
                   "hbase://HOST:PORT (env CALLSCOPE_STORE)")  # fmt: skip
    p.add_argument("--analytics", default=None, help="analytics store URL (default: --store)")
    p.add_argument("--kafka", default=os.environ.get(CALLSCOPE_KAFKA_BOOTSTRAP),
                   help="Kafka bootstrap host:port[,...]")  # fmt: skip
    p.add_argument("--group", default="callscope-collector", help="Kafka consumer group")
    p.add_argument("--spans-topic", default=SPANS_TOPIC)
    p.add_argument("--kpis-topic", default=KPIS_TOPIC)
    p.add_argument("--dlq-topic", default=SPANS_DLQ_TOPIC)
    p.add_argument("--spool", default=None, help="spool root to read (embedded mode)")
    p.add_argument("--dlq-file", default="callscope-dlq.jsonl",
                   help="dead letters without Kafka (JSON lines)")  # fmt: skip
    p.add_argument("--http-port", type=int, default=4318,
                   help="OTLP/HTTP + /metrics port on 127.0.0.1 (0: any, -1: none)")  # fmt: skip
    p.add_argument("--grpc-port", type=int, default=4317,
                   help="OTLP/gRPC port on 127.0.0.1 (0: any, -1: none)")  # fmt: skip
    p.add_argument("--no-otlp", action="store_true", help="serve /metrics only (no OTLP)")
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--batch-wait-ms", type=int, default=200)
    p.add_argument("--session-timeout-ms", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=1,
                   help="collector processes in one consumer group (the spans topic needs "
                   "at least as many partitions); each serves OTLP on the same ports")  # fmt: skip
    p.add_argument("--summary-interval", type=interval_seconds, default=DEFAULT_INTERVAL_S,
                   metavar="S", help="log one summary line every S seconds (0: none)")  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collector import Collector, CollectorConfig, CollectorPool

    spool = args.spool
    if spool is None and not args.kafka:
        spool = os.environ.get(CALLSCOPE_SPOOL_DIR) or os.path.expanduser(
            "~/.local/state/callscope/spool"
        )
    config = CollectorConfig(
        store_url=args.store,
        analytics_url=args.analytics,
        kafka_bootstrap=args.kafka or None,
        group_id=args.group,
        spans_topic=args.spans_topic,
        kpis_topic=args.kpis_topic,
        dlq_topic=args.dlq_topic,
        session_timeout_ms=args.session_timeout_ms,
        spool_dir=spool,
        dlq_file=args.dlq_file,
        http_port=None if args.http_port < 0 else args.http_port,
        grpc_port=None if args.grpc_port < 0 else args.grpc_port,
        otlp=not args.no_otlp,
        batch_size=args.batch_size,
        batch_wait_s=args.batch_wait_ms / 1000,
        workers=args.workers,
    )
    runner = Collector(config) if config.workers == 1 else CollectorPool(config)
    counters = runner.metrics if isinstance(runner, Collector) else runner
    summary = IntervalSummary(
        log, args.summary_interval, lambda: {n: counters.total(n) for n in _COUNTED}, _describe
    ).start()
    try:
        return runner.run_until_signalled()
    finally:
        summary.stop()


_COUNTED = ("consumed", "stored_spans", "stored_kpis", "dlq", "retries", "batches")


def _describe(delta: Mapping[str, float], totals: Mapping[str, float], elapsed_s: float) -> str:
    """``collector: last 10 s: consumed 1200, stored 1198 spans + 12 KPI samples in 6
    batches, 2 dead-lettered, 0 retries; 55012 spans since start``."""
    d = {k: int(v) for k, v in delta.items()}
    return (
        f"collector: last {round(elapsed_s, 1):g} s: consumed {d['consumed']}, stored "
        f"{d['stored_spans']} spans + {d['stored_kpis']} KPI samples in {d['batches']} "
        f"batches, {d['dlq']} dead-lettered, {d['retries']} retries; "
        f"{int(totals['stored_spans'])} spans since start"
    )
