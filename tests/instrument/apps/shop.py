"""A test app with no tracing code: ``shop.py provider`` serves ``shop.Till`` until SIGTERM
(``rpc.Server.run``), ``shop.py consumer ADDRESS CALLS`` calls it and exits.

Tests run both under ``callscope run``; the KPI windows they close at exit must be stored.
"""

from __future__ import annotations

import sys

import rpc


@rpc.service("shop.Till")
class Till:
    def ring(self, cents: int) -> int:
        return cents


def main() -> None:
    role = sys.argv[1]
    if role == "provider":
        server = rpc.Server("127.0.0.1", 0, injvm=False)
        server.export(Till())
        server.run(ready=lambda address: print(address, flush=True))
        return
    address, calls = sys.argv[2], int(sys.argv[3])
    with rpc.Client([address], injvm=False) as client:
        till = client.proxy("shop.Till")
        for cents in range(calls):
            assert till.ring(cents) == cents


if __name__ == "__main__":
    main()
