"""docker-compose.yml and ``callscope stack`` agree: same services, ports and versions."""

from __future__ import annotations

from pathlib import Path

import yaml

from callscope.stack import SERVICES

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_same_services() -> None:
    assert set(_compose()) == set(SERVICES)


def test_client_ports_published_on_loopback_as_in_the_stack() -> None:
    for name, cls in SERVICES.items():
        port = cls().client_port
        published = _compose()[name]["ports"]
        assert f"127.0.0.1:{port}:{port}" in published, (name, published)
        for mapping in published:
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
