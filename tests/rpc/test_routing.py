"""Routers: condition rules, safe script rules, tag, isolation levels, local first, force and
priority, and rules pushed through the registry taking effect on the next call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import rpc
from rpc.cluster import MockInvoker
from rpc.registry import connect
from rpc.routing import RouterChain, compile_script, parse_condition

PROVIDERS = (
    rpc.Provider("10.0.0.1:7001", metadata={"zone": "a", "rack": "r1", "host": "n1"}),
    rpc.Provider("10.0.0.2:7001", metadata={"zone": "a", "rack": "r2", "host": "n2"}),
    rpc.Provider(
        "10.0.0.3:7001", metadata={"zone": "b", "rack": "r3", "host": "n3", "tag": "gray"}
    ),
    rpc.Provider("127.0.0.1:7001", metadata={"zone": "b", "rack": "r4", "host": "n4"}),
)


class Listed:
    """A directory of providers with metadata, as the registry would list them."""

    def providers(self, service: str, version: str = "", group: str = "") -> Any:
        return PROVIDERS

    def subscribe(self, service: str, listener: Any) -> Any:
        return lambda: None


def client_with(*rules: dict[str, Any], labels: dict[str, Any] | None = None, **options: Any):
    mock = MockInvoker(lambda inv: inv.peer)
    client = rpc.AsyncClient(Listed(), invoker=mock, injvm=False, labels=labels, **options)
    if rules:
        client.configure("svc", routers=list(rules))
    return client, mock


async def peers_of(client: rpc.AsyncClient, method: str = "get", n: int = 24, **options) -> set:
    return {await client.generic("svc", method, "k", **options) for _ in range(n)}


async def test_a_condition_rule_keeps_calls_in_the_consumers_zone():
    rule = {"kind": "condition", "rule": "method = get* & consumer.zone = a => provider.zone = a"}
    client, _ = client_with(rule, labels={"zone": "a"})
    assert await peers_of(client, "get_user") == {"10.0.0.1:7001", "10.0.0.2:7001"}
    assert len(await peers_of(client, "put", n=40)) == 4  # the rule does not apply
    other, _ = client_with(rule, labels={"zone": "b"})
    assert len(await peers_of(other, "get_user", n=40)) == 4


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("=> zone != a", {"10.0.0.3:7001", "127.0.0.1:7001"}),
        ("=> rack = r1,r3", {"10.0.0.1:7001", "10.0.0.3:7001"}),
        ("=> host = n?", {"10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001", "127.0.0.1:7001"}),
        ("=> address = 10.0.0.*", {"10.0.0.1:7001", "10.0.0.2:7001", "10.0.0.3:7001"}),
        ("args[0] = k => zone = b & tag != gray", {"127.0.0.1:7001"}),
        ("=> zone = $consumer.zone", {"10.0.0.1:7001", "10.0.0.2:7001"}),
        ("=> port = 7000..7001 & ip = 127.*", {"127.0.0.1:7001"}),
    ],
)
async def test_condition_operators(rule, expected):
    client, _ = client_with({"kind": "condition", "rule": rule}, labels={"zone": "a"})
    assert await peers_of(client, n=40) == expected


@pytest.mark.parametrize(
    ("rule", "position", "says"),
    [
        ("method = get", 12, "'=>'"),
        ("method get => zone = a", 0, "expected 'key = values'"),
        ("metod = get => zone = a", 0, "not a fact of the call"),
        ("method = get => zone = ", 23, "empty value"),
        ("=> port = 1..x", 10, "a range is two numbers"),
        ("=> zone = $nowhere", 10, "bad reference"),
        ("method = a & & x = 1 => zone = a", 12, "empty condition"),
    ],
)
def test_condition_mistakes_name_their_position(rule, position, says):
    with pytest.raises(rpc.BadRequestError) as info:
        parse_condition(rule)
    assert f"position {position}:" in info.value.message and says in info.value.message


async def test_force_fails_naming_the_rule_and_without_it_the_rule_steps_aside():
    nowhere = {"kind": "condition", "rule": "=> zone = c", "name": "zone-c-only"}
    client, _ = client_with(nowhere)
    assert len(await peers_of(client, n=40)) == 4
    forced, mock = client_with({**nowhere, "force": True})
    with pytest.raises(rpc.RpcError) as info:
        await forced.generic("svc", "get")
    assert info.value.code == "NO_PROVIDER" and "zone-c-only" in info.value.message
    assert mock.calls == []


async def test_priority_orders_rules_and_disabled_ones_do_nothing():
    first = {"kind": "condition", "rule": "=> zone = b", "priority": 10}
    then = {"kind": "condition", "rule": "=> rack = r1,r4"}  # r1 is zone a: only r4 is left
    off = {"kind": "condition", "rule": "=> zone = a", "enabled": False}
    client, _ = client_with(then, first, off)
    assert await peers_of(client) == {"127.0.0.1:7001"}


async def test_script_rules_route_on_provider_and_request():
    script = {
        "kind": "script",
        "rule": "provider.zone == consumer.zone or startswith(request.args[0], 'vip')",
    }
    client, _ = client_with(script, labels={"zone": "b"})
    assert await peers_of(client) == {"10.0.0.3:7001", "127.0.0.1:7001"}
    assert len({await client.generic("svc", "get", "vip-1") for _ in range(40)}) == 4


ESCAPES = [
    "__import__('os').system('id')",
    "provider.__class__",
    "provider['__class__'].__bases__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('/etc/passwd')",
    "eval('1')",
    "request.method.upper()",
    "[x for x in provider]",
    "(lambda: 1)()",
    "2 ** 100000000",
    "(" * 300 + "1" + ")" * 300,
    "not " * 400 + "True",
    "1 + " * 400 + "1",
    "x := 1",
    "provider.zone == 'a'; import os",
    "f'{provider}'",
    "len(provider, key=1)",
    "a" * 2000,
]


@pytest.mark.parametrize("text", ESCAPES)
def test_script_escape_attempts_are_refused_before_they_run(text):
    with pytest.raises(rpc.BadRequestError, match="script rule"):
        compile_script(text)


@pytest.mark.parametrize(
    "text",
    [
        "'a' * 1000000",
        "str(provider.weight) + 'x' * 10",
        "len(request.method + request.method) > 0 and 99999999999 * 99999999999 * 99999999999 > 1",
        "request.args[0] + request.args[0]" + " + request.args[0]" * 10,
    ],
)
def test_scripts_that_would_grow_without_bound_stop_at_run_time(text):
    script = compile_script(text)
    from rpc.routing import ScriptError

    with pytest.raises(ScriptError):
        script.evaluate({"weight": 1}, {"method": "m", "args": ["x" * 5000]}, {})


async def test_a_script_that_hits_a_bound_steps_aside():
    client, _ = client_with({"kind": "script", "rule": "'a' * 100000 == provider.zone"})
    assert len(await peers_of(client, n=40)) == 4


async def test_tag_routing():
    client, _ = client_with({"kind": "tag"})
    assert await peers_of(client, attachments={"tag": "gray"}) == {"10.0.0.3:7001"}
    untagged = await peers_of(client, n=40)
    assert "10.0.0.3:7001" not in untagged and len(untagged) == 3
    assert len(await peers_of(client, n=40, attachments={"tag": "blue"})) == 3  # falls back
    forced, _ = client_with({"kind": "tag", "force": True})
    with pytest.raises(rpc.RpcError, match="tag"):
        await forced.generic("svc", "get", attachments={"tag": "blue"})


async def test_isolation_levels_fall_back_outward():
    rule = {"kind": "isolation"}
    host, _ = client_with(rule, labels={"host": "n2", "rack": "r9", "zone": "b"})
    assert await peers_of(host) == {"10.0.0.2:7001"}
    rack, _ = client_with(rule, labels={"host": "elsewhere", "rack": "r3", "zone": "a"})
    assert await peers_of(rack) == {"10.0.0.3:7001"}
    zone, _ = client_with(rule, labels={"host": "elsewhere", "rack": "r9", "zone": "b"})
    assert await peers_of(zone) == {"10.0.0.3:7001", "127.0.0.1:7001"}
    nowhere, _ = client_with(rule, labels={"host": "x", "rack": "y", "zone": "z"})
    assert len(await peers_of(nowhere, n=40)) == 4


async def test_local_first():
    client, _ = client_with({"kind": "local_first"})
    assert await peers_of(client) == {"127.0.0.1:7001"}


def test_bad_rules_are_refused_when_configured():
    client, _ = client_with()
    for bad in (
        {"kind": "nope"},
        {"rule": "=> zone = a"},
        {"kind": "condition", "rule": "=> zone = a", "force": "yes"},
        {"kind": "condition", "rule": "=> zone = a", "colour": 1},
        {"kind": "script", "rule": "__import__('os')"},
    ):
        with pytest.raises(rpc.BadRequestError):
            client.configure("svc", routers=[bad])
    assert RouterChain([], {}).rules == []


async def test_rules_pushed_through_the_registry_apply_on_the_next_call():
    registry = connect("memory://routing-test")
    client, _ = client_with(registry=registry)
    assert len(await peers_of(client, n=40)) == 4
    await asyncio.sleep(0.05)  # the watch starts off the loop
    registry.put_config(
        "governance/svc/routing", {"rules": [{"kind": "condition", "rule": "=> zone = b"}]}
    )
    assert await peers_of(client) == {"10.0.0.3:7001", "127.0.0.1:7001"}
    registry.put_config("governance/svc/cluster", {"cluster": "failover", "retries": 1})
    assert client.cluster.settings("svc").cluster == "failover"
    assert client.cluster.settings("svc").routers  # both documents stand
    registry.delete_config("governance/svc/routing")
    assert len(await peers_of(client, n=40)) == 4
    registry.put_config("governance/_global/cluster", {"retries": 0})
    assert client.cluster.settings("other").retries == 0
    assert client.cluster.settings("svc").retries == 1  # the service's layer is stronger
    await client.close()
    registry.close()


async def test_a_tag_travels_with_the_calls_a_request_causes(make_server, make_client):
    from rpc.routing import TagContext

    @rpc.service("tail")
    class Tail:
        def __init__(self, name: str) -> None:
            self.name = name

        async def who(self) -> str:
            return self.name

    gray_tail = await make_server(Tail("gray"))
    plain_tail = await make_server(Tail("plain"))

    class Tails:
        def providers(self, service: str, version: str = "", group: str = "") -> Any:
            return (
                rpc.Provider(gray_tail.address, metadata={"tag": "gray"}),
                rpc.Provider(plain_tail.address),
            )

        def subscribe(self, service: str, listener: Any) -> Any:
            return lambda: None

    downstream = make_client(Tails())
    downstream.configure("tail", routers=[{"kind": "tag"}])

    @rpc.service("head")
    class Head:
        async def relay(self) -> str:
            return await downstream.generic("tail", "who")  # no tag given here

    head = await make_server(Head(), interceptors=[TagContext()])
    client = make_client([head.address])
    assert await client.generic("head", "relay", attachments={"tag": "gray"}) == "gray"
    assert await client.generic("head", "relay") == "plain"
