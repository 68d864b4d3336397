"""``callscope config effective`` prints the breaker and the mask with where each came from."""

from __future__ import annotations

import json

from callscope import cli
from rpc.registry import connect


def test_effective_shows_breaker_mask_origins_and_documents(capsys):
    url = "memory://degrade-cli"
    registry = connect(url)
    cluster = {"breaker": {"probes": 2}, "methods": {"get": {"breaker": {"error_count": 3}}}}
    registry.put_config("governance/d.Svc/cluster", cluster)
    registry.put_config("governance/d.Svc/mask", {"methods": {"get": "null"}})
    registry.put_config("governance/d.Svc/custom", {"anything": 1})  # any kind: listed
    try:
        assert cli.main(["config", "effective", "d.Svc", "--method", "get", "--registry", url]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["origin"]["breaker"] == "consumer:registry d.Svc/get"
        assert shown["breaker"]["error_count"] == 3 and shown["breaker"]["probes"] == 3
        assert shown["breaker"]["fallback"] == {"action": "throw", "code": "UNAVAILABLE"}
        assert shown["mask"] == {"action": "null", "from": "governance/d.Svc/mask version 1"}
        assert sorted(shown["documents"]) == ["cluster", "custom", "mask"]
        assert cli.main(["config", "effective", "d.Svc", "--registry", url]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["origin"]["breaker"] == "consumer:registry d.Svc"
        assert shown["breaker"]["probes"] == 2 and shown["mask"] == {"methods": {"get": "null"}}
        bad = '{"methods": {"get": {"action": "throw", "code": 7}}}'
        assert cli.main(["config", "put", "governance/d.Svc/mask", bad, "--registry", url]) == 1
        assert "mask.methods.get.code" in capsys.readouterr().err
    finally:
        registry.close()


def test_degrade_mask_and_unmask_edit_one_entry_at_a_time(capsys):
    url = "memory://degrade-cli-mask"
    registry = connect(url)
    key = "governance/d.Svc/mask"

    def run(*argv: str) -> int:
        return cli.main(["degrade", *argv, "--registry", url])

    try:
        assert run("mask", "d.Svc", "throw", "--method", "get", "--code", "BUSY") == 0
        assert run("mask", "d.Svc", "value", "--method", "count", "--value", "0") == 0
        assert run("mask", "d.Svc", "null") == 0
        assert registry.get_config(key).value == {
            "action": "null",
            "methods": {
                "get": {"action": "throw", "code": "BUSY"},
                "count": {"action": "value", "value": 0},
            },
        }
        assert run("unmask", "d.Svc") == 0 and run("unmask", "d.Svc", "--method", "get") == 0
        assert registry.get_config(key).value == {
            "methods": {"count": {"action": "value", "value": 0}}
        }
        assert run("unmask", "d.Svc", "--method", "count") == 0
        assert registry.get_config(key) is None
        capsys.readouterr()
        assert run("mask", "d.Svc", "throw", "--code", "SOMETIMES") == 1
        assert "mask.code" in capsys.readouterr().err and registry.get_config(key) is None
    finally:
        registry.close()
