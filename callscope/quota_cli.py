"""``callscope quota SERVICE``: the cluster-wide quota in force and every instance's slice.

Thin: prints :func:`rpc.flow.quota_status` as JSON. The rule itself is written with
``callscope config put governance/SERVICE/quota '{"qps": 300}'`` (validated first).
"""

from __future__ import annotations

import argparse
import json

import rpc.flow

from .registry_cli import _client_options, _guard, _open


def register(sub: argparse._SubParsersAction) -> None:
    quota = sub.add_parser("quota", help="a service's cluster-wide quota and who holds which slice")
    quota.add_argument("service")
    _client_options(quota)
    quota.set_defaults(handler=_guard(_show))


def _show(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        print(json.dumps(rpc.flow.quota_status(registry, args.service), indent=2))
    finally:
        registry.close()
    return 0
