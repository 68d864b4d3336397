"""Layered configuration: precedence (consumer > provider > global, method over service, code >
file > registry), validation at the edge, files, and ``callscope config effective``."""

from __future__ import annotations

import json
import math

import pytest

import rpc
from callscope import cli
from rpc.config import LayeredConfig, Settings, read_file, validate_governance
from rpc.registry import ServiceInstance, connect


def test_precedence_granularity_first_then_level_then_source():
    config = LayeredConfig()
    config.put("global", "*", {"retries": 1, "forks": 3, "warmup": 5})
    config.put("consumer", "*", {"retries": 2})
    config.put("provider", "svc", {"retries": 3, "forks": 4, "methods": {"get": {"retries": 5}}})
    config.put("consumer", "svc", {"retries": 4}, source="registry")
    config.put("consumer", "svc", {"cluster": "failover"}, source="file")
    assert config.effective("other").retries == 2  # consumer * over global
    assert config.effective("other").forks == 3 and config.effective("other").warmup == 5
    svc = config.effective("svc")
    assert (svc.retries, svc.forks, svc.cluster) == (4, 4, "failover")
    assert config.effective("svc", "get").retries == 5  # a provider's method over a service
    config.put("consumer", "svc", {"methods": {"get": {"retries": 6}}})
    assert config.effective("svc", "get").retries == 6  # consumer's method over provider's
    config.put("consumer", "svc", {"retries": 0, "methods": {"get": {"retries": 6}}})
    assert config.effective("svc").retries == 0  # code over file over registry
    froms = [step["from"] for step in config.explain("svc", "get")]
    assert froms == [
        "global:code",
        "consumer:code",
        "provider:code",
        "consumer:registry",
        "consumer:file",
        "consumer:code",
        "provider:code",
        "consumer:code",
    ]


@pytest.mark.parametrize(
    ("layer", "says"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"attempt_timeout": math.nan}, "finite"),
        ({"attempt_timeout": math.inf}, "finite"),
        ({"retry_budget": 0}, "positive"),
        ({"idempotent": "yes"}, "true or false"),
        ({"clutser": "failover"}, "unknown setting 'clutser'"),
        ({"failback": {"TIMEOUT": "pray"}}, "failback"),
        ({"failcache_jitter": 1.0}, "jitter"),
        ({"hash_arguments": []}, "hash_arguments"),
        ({"methods": {"get": {"retries": "x"}}}, "methods.get"),
        ({"routers": [{"kind": "condition", "rule": "=> zone"}]}, "routers[0]: condition rule"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(layer, says):
    with pytest.raises(rpc.BadRequestError, match=says.replace("[", r"\[").replace("]", r"\]")):
        LayeredConfig().put("consumer", "svc", layer)


def test_levels_sources_and_scopes_are_checked():
    config = LayeredConfig()
    for bad in (("local", "svc", {}), ("global", "svc", {})):
        with pytest.raises(rpc.BadRequestError):
            config.put(*bad)
    with pytest.raises(rpc.BadRequestError):
        config.put("consumer", "svc", {}, source="env")
    assert Settings().merged({"hash_arguments": [1, 0]}).hash_arguments == (1, 0)


def test_a_settings_file(tmp_path):
    toml = tmp_path / "governance.toml"
    toml.write_text(
        '["*"]\ncluster = "failover"\n\n["demo.Echo"]\nretries = 3\n\n'
        '["demo.Echo".methods.get]\nidempotent = true\n'
    )
    client = rpc.AsyncClient(["127.0.0.1:1"], config_file=toml, injvm=False)
    assert client.config.effective("x").cluster == "failover"
    assert client.config.effective("demo.Echo", "get").idempotent
    assert client.config.effective("demo.Echo").retries == 3
    client.configure("demo.Echo", retries=1)  # code over the file
    assert client.config.effective("demo.Echo").retries == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"svc": {"retries": "many"}}')
    with pytest.raises(rpc.BadRequestError, match=r"bad\.json: svc: setting 'retries'"):
        read_file(bad)


def test_the_registry_refuses_governance_documents_consumers_cannot_use():
    registry = connect("memory://config-validate")
    with pytest.raises(rpc.BadRequestError, match="position 10: a range is two numbers"):
        registry.put_config(
            "governance/svc/routing", [{"kind": "condition", "rule": "=> port = 1..x"}]
        )
    with pytest.raises(rpc.BadRequestError, match="unknown setting"):
        registry.put_config("governance/svc/cluster", {"retires": 2})
    with pytest.raises(rpc.BadRequestError, match="weight"):
        registry.put_config("governance/svc/weights", {"weights": {"a:1": {"weight": -1}}})
    validate_governance("governance/svc/other", {"anything": True})  # not ours to judge
    registry.close()


async def test_provider_stated_settings_are_the_provider_level():
    registry = connect("memory://config-provider")
    registry.register(
        ServiceInstance(
            "svc",
            "127.0.0.1:9",
            metadata={"governance": {"cluster": "failover", "methods": {"get": {"retries": 4}}}},
        )
    )
    from rpc.registry import RegistryDirectory

    client = rpc.AsyncClient(RegistryDirectory(registry), injvm=False, timeout=0.5)
    with pytest.raises(rpc.RpcError):
        await client.generic("svc", "get")
    assert client.config.effective("svc", "get").retries == 4
    client.configure("svc", cluster="failfast")
    assert client.config.effective("svc", "get").cluster == "failfast"
    await client.close()
    registry.close()


def test_callscope_config_effective(tmp_path, capsys):
    registry = connect("memory://config-cli")
    registry.put_config("governance/_global/cluster", {"retries": 1})
    registry.put_config("governance/demo.Echo/cluster", {"cluster": "failover"})
    registry.put_config("governance/demo.Echo/routing", [{"kind": "tag"}])
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"demo.Echo": {"methods": {"say": {"idempotent": True}}}}))
    argv = [
        "config",
        "effective",
        "demo.Echo",
        "--method",
        "say",
        "--registry",
        "memory://config-cli",
    ]
    assert cli.main([*argv, "--file", str(local)]) == 0
    shown = json.loads(capsys.readouterr().out)
    effective = shown["effective"]
    assert effective["cluster"] == "failover" and effective["retries"] == 1
    assert effective["idempotent"] is True and effective["routers"] == [{"kind": "tag"}]
    assert [layer["from"] for layer in shown["layers"]] == [
        "global:registry",
        "consumer:registry",
        "consumer:file",
    ]
    assert cli.main(["config", "put", "governance/demo.Echo/cluster", '{"retries": -2}',
                     "--registry", "memory://config-cli"]) != 0  # fmt: skip
    assert "retries" in capsys.readouterr().err
    registry.close()
