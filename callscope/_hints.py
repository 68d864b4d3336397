"""What to do next, for the failures a user meets most: printed under the error itself."""

from __future__ import annotations

import argparse

from ._shell import callscope_command


def hint_for(code: str, args: argparse.Namespace, about: str = "store") -> str:
    """Advice for an error ``code`` (the stable codes of rpc and storage) that a command
    met talking to a ``store`` or a ``registry``."""
    command = callscope_command()
    store = getattr(args, "store", None) or "the store"
    if about == "registry":
        return _registry_hint(code, command, getattr(args, "registry", None) or "the registry")
    if code == "UNAVAILABLE":
        return (f"is the store at {store} running? `{command} stack up` starts local ones; "
                "or pass --store URL (or set $CALLSCOPE_STORE)")  # fmt: skip
    if code == "NOT_FOUND":
        return (f"nothing is stored at {store} yet: check the URL, or run `{command} collector "
                f"--store {store}` to fill it")  # fmt: skip
    return f"see `{command} {args.command} --help`"


def _registry_hint(code: str, command: str, registry: str) -> str:
    if code == "UNAVAILABLE":
        return (f"is a registry serving {registry}? `{command} registry` starts one; or pass "
                "--registry URL (or set $CALLSCOPE_REGISTRY)")  # fmt: skip
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return "pass a token with the grant it needs: --token (or $CALLSCOPE_REGISTRY_TOKEN)"
    if code == "CONFLICT":
        return "the document changed meanwhile: read it again and pass its --expect VERSION"
    return f"see `{command} registry --help` and `{command} config --help`"
