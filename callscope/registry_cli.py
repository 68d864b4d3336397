"""``callscope registry`` (serve, ls) and ``callscope config get|put|rm|ls``.

Thin: parse options, call ``rpc.registry``; every refusal prints its error code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rpc
from callscope_contract import environment
from rpc.registry import (
    DEFAULT_PORT,
    REGISTRY_URL_ENV,
    Quotas,
    RegistryServer,
    connect,
    default_db_path,
    load_tokens,
    server_tls,
    validate_document,
)

from ._hints import hint_for
from ._registry_summary import CallCounter, holdings
from ._registry_summary import describe as describe_registry
from ._summary import DEFAULT_INTERVAL_S, IntervalSummary, interval_seconds
from ._table import table_lines

DEFAULT_URL = f"callscope://127.0.0.1:{DEFAULT_PORT}"
TOKEN_ENV = environment.CALLSCOPE_REGISTRY_TOKEN
"""The token ``callscope config`` and ``registry ls`` present to an embedded registry."""


def register(sub: argparse._SubParsersAction) -> None:
    reg = sub.add_parser(
        "registry",
        help="run the embedded registry server (default), or list what it holds",
        description="Serve the embedded registry (RPC + SQLite), or `ls` its services.",
    )
    _serve_options(reg)
    reg.set_defaults(handler=_guard(_serve))
    actions = reg.add_subparsers(dest="registry_command", metavar="ACTION")
    serve = actions.add_parser("serve", help="run the registry server (the default)")
    _serve_options(serve)
    serve.set_defaults(handler=_guard(_serve))
    ls = actions.add_parser("ls", help="list services, or one service's instances")
    ls.add_argument("service", nargs="?")
    _client_options(ls)
    ls.set_defaults(handler=_guard(_ls))

    cfg = sub.add_parser("config", help="read and write configuration documents")
    verbs = cfg.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    get = verbs.add_parser("get", help="print a document (JSON) and its version")
    get.add_argument("key")
    put = verbs.add_parser("put", help="validate, then write a document")
    put.add_argument("key")
    put.add_argument("value", nargs="?", help="JSON text (or use --file)")
    put.add_argument("-f", "--file", help="read the JSON value from this file ('-' for stdin)")
    rm = verbs.add_parser("rm", help="delete a document")
    rm.add_argument("key")
    for verb in (put, rm):
        verb.add_argument("--expect", type=int, help="compare-and-set: the version to replace")
    ls_cfg = verbs.add_parser("ls", help="list documents under a key prefix")
    ls_cfg.add_argument("prefix", nargs="?", default="")
    eff = verbs.add_parser(
        "effective",
        help="the settings a consumer of SERVICE runs with (breaker, mask, every governance "
        "document), and where each comes from",
    )
    eff.add_argument("service")
    eff.add_argument("--method", default="", help="a method's settings (method over service)")
    eff.add_argument("-f", "--file", help="the consumer's settings file (JSON or TOML)")
    verbs_and_runs = ((get, _get), (put, _put), (rm, _rm), (ls_cfg, _ls_config), (eff, _effective))
    for verb, run in verbs_and_runs:
        _client_options(verb)
        verb.set_defaults(handler=_guard(run))


def _serve_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, help="SQLite file (default $CALLSCOPE_REGISTRY_DB)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--tokens", type=Path, help="JSON file of tokens and their grants")
    p.add_argument("--tls-cert", type=Path, help="serve TLS: certificate chain (PEM)")
    p.add_argument("--tls-key", type=Path, help="serve TLS: the certificate's private key (PEM)")
    defaults = Quotas()
    for name in defaults.__dataclass_fields__:
        flag = "--max-" + name.replace("_", "-")
        default = getattr(defaults, name)
        p.add_argument(flag, type=int, default=default, dest=name,
                       help=f"quota (default {default}); past it: RESOURCE_EXHAUSTED")  # fmt: skip
    p.add_argument("--summary-interval", type=interval_seconds, default=DEFAULT_INTERVAL_S,
                   metavar="S", help="log one summary line every S seconds (0: none)")  # fmt: skip


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry",
        default=os.environ.get(REGISTRY_URL_ENV, DEFAULT_URL),
        help=f"registry URL (default ${REGISTRY_URL_ENV} or {DEFAULT_URL})",
    )
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"or ${TOKEN_ENV}")


def _guard(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except rpc.RpcError as err:  # bad input and missing files: see cli.main
            print(f"callscope {args.command}: {err.code}: {err.message}", file=sys.stderr)
            print(
                f"callscope {args.command}: {hint_for(err.code, args, 'registry')}", file=sys.stderr
            )
            return 1

    return handler


def _serve(args: argparse.Namespace) -> int:
    tokens = load_tokens(args.tokens) if args.tokens else None
    options: dict[str, Any] = {}
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise ValueError("--tls-cert and --tls-key go together")
        options["ssl"] = server_tls(str(args.tls_cert), str(args.tls_key))
    quotas = Quotas(**{name: getattr(args, name) for name in Quotas.__dataclass_fields__})
    counter = CallCounter()
    rpc.add_global_interceptor(counter, side="server")  # before the server builds its chain
    server = RegistryServer(
        args.db or default_db_path(), args.host, args.port, tokens=tokens, quotas=quotas, **options
    )
    summary = IntervalSummary(
        logging.getLogger("callscope.registry"),
        args.summary_interval,
        lambda: {**counter.snapshot(), **holdings(server)},
        describe_registry,
    )

    def ready(address: str) -> None:
        print(f"callscope registry on {address}", flush=True)
        summary.start()

    try:
        server.run(ready=ready)
    finally:
        summary.stop()
        rpc.remove_global_interceptor(counter, side="server")
    return 0


def _open(args: argparse.Namespace) -> Any:
    options: dict[str, Any] = {}
    if args.token and args.registry.startswith("callscope:"):
        options["token"] = args.token
    return connect(args.registry, **options)


def _ls(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        if args.service:
            rows = [
                (i.address, i.version or "-", i.group or "-", i.weight, i.pid,
                 " ".join(f"{k}={v}" for k, v in sorted(i.metadata.items())))
                for i in registry.lookup(args.service)
            ]  # fmt: skip
            header = ("ADDRESS", "VERSION", "GROUP", "WEIGHT", "PID", "METADATA")
            print("\n".join(table_lines(header, rows, right=[3, 4])))
        else:
            for name in registry.services():
                print(name)
    finally:
        registry.close()
    return 0


def _get(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        doc = registry.get_config(args.key)
    finally:
        registry.close()
    if doc is None:
        print(f"callscope config: NOT_FOUND: no config {args.key!r}", file=sys.stderr)
        return 1
    print(json.dumps({"key": doc.key, "version": doc.version, "value": doc.value}, indent=2))
    return 0


def _put(args: argparse.Namespace) -> int:
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    elif args.value is not None:
        text = args.value
    else:
        raise ValueError("give the value as JSON text or with --file")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the value is not JSON: {err}") from None
    validate_document(args.key, value)  # refuse locally before touching the registry
    registry = _open(args)
    try:
        doc = registry.put_config(args.key, value, args.expect)
    finally:
        registry.close()
    print(f"{doc.key} version {doc.version}")
    return 0


def _rm(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        registry.delete_config(args.key, args.expect)
    finally:
        registry.close()
    print(f"removed {args.key}")
    return 0


def _effective(args: argparse.Namespace) -> int:
    local = rpc.config.read_file(args.file) if args.file else None
    registry = _open(args)
    try:
        report = rpc.config.effective_report(registry, args.service, args.method, local)
    finally:
        registry.close()
    print(json.dumps(report, indent=2, default=repr))
    return 0


def _ls_config(args: argparse.Namespace) -> int:
    registry = _open(args)
    try:
        rows = [
            (d.key, d.version, json.dumps(d.value)[:80]) for d in registry.list_config(args.prefix)
        ]
        if rows:
            print("\n".join(table_lines(("KEY", "VERSION", "VALUE"), rows, right=[1])))
    finally:
        registry.close()
    return 0
