"""``callscope spool replay PATH``: send a spool's undelivered records to Kafka now.

A traced process that could not reach Kafka leaves them in its spool (its exit log line
names the directory); the next process of the same service would replay them when it
starts. This does it at once, for a service that is not coming back.
"""

from __future__ import annotations

import argparse
import os
import sys

from callscope_contract import environment


def register(sub: argparse._SubParsersAction) -> None:
    spool = sub.add_parser("spool", help="replay a traced process's spool to Kafka")
    actions = spool.add_subparsers(dest="action", metavar="ACTION", required=True)
    replay = actions.add_parser(
        "replay",
        help="send the records waiting in a spool directory to Kafka, oldest first",
        description="Delivers the spool's backlog (same order, nothing sent twice) and "
        "exits 0 when it is empty, 1 when records remain (Kafka refused or --timeout).",
    )
    replay.add_argument("path", help="the spool directory (named in the exit log line)")
    bootstrap = environment.CALLSCOPE_KAFKA_BOOTSTRAP
    replay.add_argument("--kafka", metavar="HOST:PORT", default=os.environ.get(bootstrap),
                        help=f"Kafka bootstrap (default ${bootstrap})")  # fmt: skip
    replay.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from instrument import Settings, get_exporter, replay_spool

    if not args.kafka:
        raise ValueError("give --kafka HOST:PORT (or set CALLSCOPE_KAFKA_BOOTSTRAP)")
    if not 0 < args.timeout < 86_400:
        raise ValueError(f"--timeout is seconds between 0 and 86400, not {args.timeout}")
    settings = Settings.from_env(kafka_bootstrap=args.kafka)
    done = replay_spool(args.path, get_exporter("kafka", settings), args.timeout)
    print(f"callscope spool: {done.records} records replayed from {args.path} to {args.kafka}")
    if done.left:
        print(f"callscope spool: records remain in {args.path}; is Kafka at {args.kafka} up?",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
