"""``callscope degrade mask|unmask``: write ``governance/<service>/mask`` without hand-written JSON.

Thin: read the document, change one entry (``rpc.degrade.with_mask`` / ``without_mask``),
write it back with compare-and-set (a concurrent writer makes it fail ``CONFLICT``, never
lose an edit). ``callscope config effective SERVICE`` shows the result.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import rpc

from .registry_cli import _client_options, _guard, _open


def register(sub: argparse._SubParsersAction) -> None:
    deg = sub.add_parser("degrade", help="mask a service or method (null, throw, value, mock)")
    verbs = deg.add_subparsers(dest="degrade_command", metavar="ACTION", required=True)
    mask = verbs.add_parser("mask", help="switch SERVICE (or --method) to a fallback, live")
    mask.add_argument("service")
    mask.add_argument("action", choices=rpc.degrade.ACTIONS)
    mask.add_argument("--method", help="only this method")
    mask.add_argument("--code", default="UNAVAILABLE", help="throw: the error code")
    mask.add_argument("--message", default="", help="throw: the error message")
    mask.add_argument("--value", default="null", help="value: the JSON value returned")
    mask.add_argument("--mock", help="mock: the registered mock's name (default: SERVICE)")
    unmask = verbs.add_parser("unmask", help="lift the mask of SERVICE (or --method)")
    unmask.add_argument("service")
    unmask.add_argument("--method", help="only this method")
    for verb, run in ((mask, _mask), (unmask, _unmask)):
        _client_options(verb)
        verb.set_defaults(handler=_guard(run))


def _mask(args: argparse.Namespace) -> int:
    try:
        value = json.loads(args.value)
    except json.JSONDecodeError as err:
        raise rpc.BadRequestError(f"--value is not JSON: {err}") from None
    spec = {"action": args.action, "code": args.code, "message": args.message, "value": value}
    if args.mock:
        spec["mock"] = args.mock
    return _edit(args, lambda doc: rpc.degrade.with_mask(doc, args.method, spec))


def _unmask(args: argparse.Namespace) -> int:
    return _edit(args, lambda doc: rpc.degrade.without_mask(doc, args.method))


def _edit(args: argparse.Namespace, change: Callable[[Any], dict[str, Any] | None]) -> int:
    key = rpc.degrade.mask_key(args.service)
    registry = _open(args)
    try:
        current = registry.get_config(key)
        updated = change(None if current is None else current.value)
        expected = 0 if current is None else current.version
        if updated is None:
            if current is not None:
                registry.delete_config(key, expected)
            print(f"{key}: no mask")
        else:
            doc = registry.put_config(key, updated, expected)
            print(f"{key} version {doc.version}: {json.dumps(doc.value)}")
    finally:
        registry.close()
    return 0
