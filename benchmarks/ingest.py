"""Ingest throughput (Kafka -> collector -> store) and query latency, per storage backend.

1. ``--spans N`` span messages (traces of 10 spans over 5 services, ~450 bytes each) are
   produced to a fresh Kafka topic first; then a collector (in this process, batches of
   2000) consumes them into the store. ``spans_per_s`` = N / (time from the first message
   consumed to the last batch stored).
2. Peer, same run, same store: the naive writer -- one ``write_spans([span])`` call per
   span (unbatched, one round trip / transaction each) on a sample of ``--naive`` spans.
   ``ratio_vs_unbatched`` = collector spans/s / naive spans/s. ``--workers N`` (N > 1)
   runs N collector processes in one consumer group instead (``CollectorPool``; the
   topic has max(4, N) partitions); the time starts at the first message any of them
   consumed.
3. The store is filled up to ``--stored`` spans with direct batched writes, then
   ``get_trace`` (200 random traces) and ``find_traces`` (100 searches: service, plus an
   operation, a tag, a duration or a time range, limit 20, whole traces fetched) are timed.

The last line is one JSON object. Services come from ``callscope stack`` (already up).

    python benchmarks/ingest.py --backend sqlite --spans 20000
    python benchmarks/ingest.py --backend sqlite --spans 100000 --workers 2
    python benchmarks/ingest.py --backend elasticsearch --spans 100000 --stored 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callscope_contract import SpanRecord  # noqa: E402
from collector import Collector, CollectorConfig, CollectorPool, ensure_topics  # noqa: E402
from storage import SpanStore, TraceQuery, open_analytics_store, open_span_store  # noqa: E402

SERVICES = ["gateway", "orders", "billing", "stock", "users"]
BASE_US = 1_764_150_000_000_000
KAFKA = os.environ.get("CALLSCOPE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")


def store_url(backend: str, tmp: Path, tag: str) -> str:
    if backend == "sqlite":
        return f"sqlite://{tmp / 'ingest.db'}"
    if backend == "elasticsearch":
        return f"elasticsearch://127.0.0.1:9200?prefix=csbench-{tag}"
    return f"hbase://127.0.0.1:9090?prefix=csbench_{tag}"


def make_span(i: int, rng: random.Random) -> SpanRecord:
    trace = i // 10
    service = SERVICES[i % 5]
    return SpanRecord(
        trace_id=f"{trace:016x}{rng.getrandbits(64):016x}" if i % 10 == 0 else "",
        span_id=f"{i + 1:016x}",
        parent_span_id="" if i % 10 == 0 else f"{i:016x}",
        name=f"{service}.Api/m{i % 7}",
        kind="SERVER" if i % 2 else "CLIENT",
        service=service,
        instance=f"10.0.0.{i % 9}:7001",
        host=f"node-{i % 4}",
        peer_service=SERVICES[(i + 1) % 5],
        peer_instance="10.0.0.5:51544",
        start_us=BASE_US + i * 1000,
        duration_us=100 + rng.randrange(50_000),
        status="ERROR" if rng.random() < 0.02 else "OK",
        attributes={"rpc.system": "callscope", "zone": "abc"[i % 3], "tenant": f"t{i % 50}"},
    )


def spans(start: int, count: int, rng: random.Random) -> list[SpanRecord]:
    out, trace_id = [], ""
    for i in range(start, start + count):
        span = make_span(i, rng)
        if i % 10 == 0 or not trace_id:
            trace_id = span.trace_id or f"{i // 10:016x}{rng.getrandbits(64):016x}"
        span.trace_id = trace_id
        out.append(span)
    return out


def produce(topic: str, batch: list[SpanRecord]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=KAFKA, acks=1, linger_ms=20,
                             batch_size=512 * 1024, compression_type="gzip")  # fmt: skip
    for span in batch:
        producer.send(topic, key=span.trace_id.encode(), value=span.to_json())
    producer.flush()
    producer.close()


def ingest(url: str, topic: str, group: str, n: int, workers: int = 1) -> float:
    config = CollectorConfig(
        store_url=url, kafka_bootstrap=KAFKA, group_id=group, spans_topic=topic,
        kpis_topic=topic + ".kpis", dlq_topic=topic + ".dlq", http_port=None,
        batch_size=2000, batch_wait_s=0.2, kpi_interval_s=3600, workers=workers,
    )  # fmt: skip
    if workers > 1:
        pool = CollectorPool(config).start()
        try:
            while pool.total("consumed") == 0:
                time.sleep(0.002)
            first = time.perf_counter()
            while pool.total("stored_spans") < n:
                if pool.failed():
                    raise RuntimeError(f"collector workers {pool.failed()} died")
                time.sleep(0.002)
            rate = n / (time.perf_counter() - first)
            per = [pool.count(i, "stored_spans") for i in range(workers)]
            print(f"stored per worker: {per}", flush=True)
            return rate
        finally:
            pool.stop()
    collector = Collector(config).start()
    try:
        while collector.metrics.total("consumed") == 0:
            time.sleep(0.002)
        first = time.perf_counter()
        while collector.metrics.total("stored_spans") < n:
            time.sleep(0.002)
        return n / (time.perf_counter() - first)
    finally:
        collector.stop()


def naive(store: SpanStore, batch: list[SpanRecord]) -> float:
    start = time.perf_counter()
    for span in batch:
        store.write_spans([span])
    return len(batch) / (time.perf_counter() - start)


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] * 1000 if len(samples) > 1 else 0.0


def queries(store: SpanStore, stored: int, rng: random.Random) -> tuple[float, float]:
    store.refresh()
    traces = stored // 10
    get_times = []
    for _ in range(200):
        trace_index = rng.randrange(traces)
        sample = spans(trace_index * 10, 1, random.Random(trace_index))  # same ids as written
        start = time.perf_counter()
        found = store.get_trace(sample[0].trace_id)
        get_times.append(time.perf_counter() - start)
        assert found is not None and len(found.spans) == 10, "a stored trace went missing"
    end_us = BASE_US + stored * 1000
    find_times = []
    for k in range(100):
        service = SERVICES[k % 5]
        extra = [
            {}, {"operation": f"{service}.Api/m{k % 7}"}, {"tags": {"zone": "abc"[k % 3]}},
            {"min_duration_us": 40_000},
            {"start_min_us": end_us - 600_000_000, "start_max_us": end_us - 300_000_000},
        ][k % 5]  # fmt: skip
        start = time.perf_counter()
        store.find_traces(TraceQuery(service, limit=20, **extra))
        find_times.append(time.perf_counter() - start)
    return p99(get_times), p99(find_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "elasticsearch", "hbase"], default="sqlite")
    parser.add_argument("--spans", type=int, default=20_000, help="spans through Kafka")
    parser.add_argument("--naive", type=int, default=1000, help="spans for the unbatched peer")
    parser.add_argument("--stored", type=int, default=0, help="fill to this many (default N)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--workers", type=int, default=1,
                        help="collector processes in one consumer group")  # fmt: skip
    args = parser.parse_args()
    n = args.spans - args.spans % 10
    stored = max(args.stored - args.stored % 10, n)
    tag = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="callscope-ingest-"))
    url = store_url(args.backend, tmp, tag)
    topic = f"csbench.{tag}.spans"
    partitions = max(4, args.workers)
    ensure_topics(KAFKA, [topic, topic + ".kpis", topic + ".dlq"], partitions=partitions)
    print(f"producing {n} spans to {topic}", flush=True)
    # Same seed per trace as queries() uses: trace k is spans(10k, 10, Random(k)).
    produce(topic, [s for k in range(n // 10) for s in spans(k * 10, 10, random.Random(k))])
    print(f"ingesting into {url}", flush=True)
    rate = ingest(url, topic, f"csbench-{tag}", n, args.workers)
    print(f"collector: {rate:,.0f} spans/s", flush=True)
    store = open_span_store(url)
    try:
        peer_spans = spans(10_000_000_000, args.naive, random.Random(1))
        for s in peer_spans:
            s.service = "naive-peer"
        peer = naive(store, peer_spans)
        print(f"naive one-span-per-write: {peer:,.0f} spans/s", flush=True)
        chunk = 5000
        for k0 in range(n // 10, stored // 10, chunk // 10):
            batch = [s for k in range(k0, min(k0 + chunk // 10, stored // 10))
                     for s in spans(k * 10, 10, random.Random(k))]  # fmt: skip
            store.write_spans(batch)
            if k0 % 100_000 == 0:
                print(f"  filled {k0 * 10:,} spans", flush=True)
        get_p99, find_p99 = queries(store, stored, random.Random(7))
        print(f"stored {stored:,}: get_trace p99 {get_p99:.1f} ms, "
              f"find_traces p99 {find_p99:.1f} ms", flush=True)  # fmt: skip
    finally:
        if not args.keep:
            drop = getattr(store, "drop", None)
            if drop:
                drop()
            with open_analytics_store(url) as analytics:  # the collector's own KPIs
                drop = getattr(analytics.table, "drop", None)
                if drop:
                    drop()
        store.close()
    print(json.dumps({
        "backend": args.backend, "spans": n, "stored": stored, "workers": args.workers,
        "spans_per_s": round(rate), "peer": "one write_spans([span]) per span (unbatched)",
        "peer_spans_per_s": round(peer), "ratio_vs_unbatched": round(rate / peer, 2),
        "get_trace_p99_ms": round(get_p99, 2), "find_traces_p99_ms": round(find_p99, 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
