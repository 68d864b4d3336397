"""``callscope collector``: run the collector (Kafka / spool / OTLP -> a store) until signalled."""

from __future__ import annotations

import argparse
import os

from callscope_contract import KPIS_TOPIC, SPANS_DLQ_TOPIC, SPANS_TOPIC
from callscope_contract.environment import (
    CALLSCOPE_KAFKA_BOOTSTRAP,
    CALLSCOPE_SPOOL_DIR,
    CALLSCOPE_STORE,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collector",
        help="consume spans and KPIs (Kafka, spool, OTLP/HTTP) into a store",
        description="Sources: Kafka (--kafka or CALLSCOPE_KAFKA_BOOTSTRAP), the spool "
        "(--spool or CALLSCOPE_SPOOL_DIR, when no Kafka) and OTLP/HTTP POST /v1/traces; "
        "/metrics on the same port.",
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
    p.add_argument("--no-otlp", action="store_true", help="serve /metrics only")
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--batch-wait-ms", type=int, default=200)
    p.add_argument("--session-timeout-ms", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=1,
                   help="collector processes in one consumer group (the spans topic needs "
                   "at least as many partitions); only the first serves HTTP")  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collector import Collector, CollectorConfig

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
        otlp=not args.no_otlp,
        batch_size=args.batch_size,
        batch_wait_s=args.batch_wait_ms / 1000,
        workers=args.workers,
    )
    return Collector(config).run_until_signalled()
