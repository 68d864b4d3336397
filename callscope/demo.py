"""``callscope demo``: a provider and a consumer in two processes, calls printed with latencies."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import rpc


@dataclass
class Order:
    item: str
    quantity: int


@dataclass
class Receipt:
    order_id: int
    item: str
    total_cents: int


@rpc.service("demo.Shop", version="1.0")
class Shop:
    """A tiny provider: sync and async methods, a dataclass API, an error path."""

    def __init__(self) -> None:
        self._next_id = 1

    def price(self, item: str) -> int:
        prices = {"tea": 350, "coffee": 420, "cake": 500}
        if item not in prices:
            raise rpc.NotFoundError(f"no such item {item!r}")
        return prices[item]

    async def order(self, order: Order) -> Receipt:
        await asyncio.sleep(0.001)  # pretend to talk to a database
        receipt = Receipt(self._next_id, order.item, self.price(order.item) * order.quantity)
        self._next_id += 1
        return receipt


class ShopApi:
    """The consumer's typed view of the service."""

    def price(self, item: str) -> int: ...
    def order(self, order: Order) -> Receipt: ...


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a provider and a consumer and print the calls")
    p.add_argument("--calls", type=int, default=20, help="how many calls the consumer makes")
    p.set_defaults(handler=run_demo)
    p = sub.add_parser("demo-provider", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(handler=run_provider)


def run_provider(args: argparse.Namespace) -> int:
    server = rpc.Server("127.0.0.1", args.port)
    server.export(Shop())
    server.run(ready=lambda address: print(address, flush=True))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    print("callscope demo: starting a provider process ...", flush=True)
    provider = subprocess.Popen(
        [sys.executable, "-m", "callscope", "demo-provider"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert provider.stdout is not None
        address = provider.stdout.readline().strip()
        if not address:
            print("callscope demo: the provider did not start", file=sys.stderr)
            return 1
        print(f"provider pid {provider.pid} serving demo.Shop on {address}")
        print(f"consumer pid {os.getpid()} calling it {args.calls} times:\n")
        latencies = []
        with rpc.Client([address], timeout=5.0) as client:
            shop = client.proxy("demo.Shop", ShopApi, version="1.0")
            items = ["tea", "coffee", "cake", "scones"]
            for i in range(args.calls):
                item = items[i % len(items)]
                start = time.perf_counter()
                try:
                    if i % 2:
                        result = shop.order(Order(item, 1 + i % 3))
                        what = f"order({item!r}, {1 + i % 3})"
                    else:
                        result = shop.price(item)
                        what = f"price({item!r})"
                    outcome = f"-> {result}"
                except rpc.RpcError as err:
                    what, outcome = f"call for {item!r}", f"!! {err.code}: {err.message}"
                ms = (time.perf_counter() - start) * 1000
                latencies.append(ms)
                print(f"  #{i + 1:<3} {ms:7.3f} ms  {what} {outcome}")
        print(
            f"\n{len(latencies)} calls; latency p50 {statistics.median(latencies):.3f} ms, "
            f"max {max(latencies):.3f} ms"
        )
        return 0
    finally:
        provider.terminate()
        provider.wait(timeout=10)
