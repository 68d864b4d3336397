"""docker-compose.yml agrees with ``callscope stack`` (services, ports, versions) and with
callscope's own command line (every command parses, every variable exists, every address
points at a service that serves it) -- checked without a Docker engine."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
import yaml

from callscope.cli import build_parser
from callscope.demo.topology import LOADGEN, instances
from callscope.stack import SERVICES
from callscope_contract import environment

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _ours() -> dict[str, dict]:
    """callscope's own processes: the services built from the repository's image."""
    return {name: s for name, s in _compose().items() if name not in SERVICES}


def _parse(command: list[str], env: dict[str, str] | None = None) -> argparse.Namespace:
    """The command as the container runs it: with its environment (options default to it)."""
    try:
        with mock.patch.dict(os.environ, env or {}):
            args = build_parser().parse_args([str(a) for a in command])
    except SystemExit as exit:
        raise AssertionError(f"`callscope {shlex.join(command)}` does not parse") from exit
    assert getattr(args, "handler", None), f"`callscope {shlex.join(command)}` runs nothing"
    return args


def _env(service: dict) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_the_stack_services_are_the_stacks() -> None:
    infrastructure = {name for name, s in _compose().items() if "command" not in s}
    assert infrastructure == set(SERVICES)


def test_ports_are_published_on_loopback_as_in_the_stack() -> None:
    for name, cls in SERVICES.items():
        port = cls().client_port
        assert f"127.0.0.1:{port}:{port}" in _compose()[name]["ports"], name
    for name, service in _compose().items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), f"{name} publishes {mapping} beyond loopback"


def test_versions_match_the_poms() -> None:
    compose = _compose()
    for name, cls in SERVICES.items():
        version = cls.artifact.version
        service = compose[name]
        if "build" in service:  # built from the same pom
            assert (Path(COMPOSE.parent, service["build"]) / "pom.xml") == cls.artifact.pom
            assert service["image"].endswith(f":{version}")
        else:
            assert service["image"].rsplit(":", 1)[1] == version, (name, version)


def test_elasticsearch_runs_like_the_stack() -> None:
    env = _compose()["elasticsearch"]["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "false"
    assert env["ES_JAVA_OPTS"] == "-Xms1g -Xmx1g"


def test_callscopes_processes_run_from_one_image_whose_entry_point_is_the_cli() -> None:
    ours = _ours()
    assert {"registry", "collector", "dashboard", LOADGEN} <= set(ours)
    for name, service in ours.items():
        assert service["build"]["context"] == ".", name
        dockerfile = ROOT / service["build"]["dockerfile"]
        assert 'ENTRYPOINT ["callscope"]' in dockerfile.read_text(), name
        assert (ROOT / "pyproject.toml").is_file()


@pytest.mark.parametrize("name", sorted(_ours()))
def test_each_command_is_one_the_cli_takes(name: str) -> None:
    service = _ours()[name]
    _parse(service["command"], _env(service))
    for variable in _env(service):
        assert variable in environment.__all__, f"{name}: {variable} is no CALLSCOPE_ variable"
    for dependency in service.get("depends_on", {}):
        assert dependency in _compose(), f"{name} depends on an unknown {dependency}"


def test_the_shop_is_the_demos_topology_each_instance_reachable_by_its_name() -> None:
    ours = _ours()
    shop = {n: s for n, s in ours.items() if s["command"][0] == "demo-service"}
    assert {_parse(s["command"], _env(s)).instance.label for s in shop.values()} == {
        i.label for i in instances()
    }
    for name, service in shop.items():
        args = _parse(service["command"], _env(service))
        assert args.host == "0.0.0.0" and args.advertise == name, name  # dialled by its name
        assert _env(service)[environment.CALLSCOPE_SERVICE_NAME] == args.instance.service
    assert _env(ours[LOADGEN])[environment.CALLSCOPE_SERVICE_NAME] == LOADGEN


def test_every_address_points_at_a_service_that_serves_it() -> None:
    """Options as each container sees them (flags, or the variables they default to)."""
    compose = _compose()
    registry = _parse(compose["registry"]["command"])
    assert registry.host == "0.0.0.0"
    kafka = compose["kafka"]["environment"]
    seen = set()
    for name, service in _ours().items():
        args = _parse(service["command"], _env(service))
        if url := getattr(args, "registry", None):
            assert url == f"callscope://registry:{registry.port}", name
            seen.add("registry")
        if name != "registry" and (bootstrap := getattr(args, "kafka", None)):
            listener = kafka["KAFKA_ADVERTISED_LISTENERS"].split(f"://{bootstrap}")[0]
            assert listener != kafka["KAFKA_ADVERTISED_LISTENERS"], (name, bootstrap)
            port = bootstrap.rsplit(":", 1)[1]
            assert f"{listener.rsplit(',', 1)[-1]}://0.0.0.0:{port}" in kafka["KAFKA_LISTENERS"]
            seen.add("kafka")
        if store := getattr(args, "store", None):
            parts = urlsplit(store)
            assert parts.hostname in SERVICES, (name, store)
            assert parts.port == SERVICES[parts.hostname]().client_port, (name, store)
            seen.add("store")
        if bootstrap := _env(service).get(environment.CALLSCOPE_KAFKA_BOOTSTRAP):
            assert f"://{bootstrap}" in kafka["KAFKA_ADVERTISED_LISTENERS"], name  # exporters
    assert seen == {"registry", "kafka", "store"}
    dashboard = _parse(compose["dashboard"]["command"])
    assert f"127.0.0.1:{dashboard.port}:{dashboard.port}" in compose["dashboard"]["ports"]
