"""A second language's real exporter: the OpenTelemetry JavaScript SDK (from npm, pinned in
``tests/js/package.json``) sends traces to the OTLP/HTTP intake, chunked, JSON and protobuf."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector import Collector

from .helpers import running
from .test_embedded import config

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def node() -> str:
    """``node``, with the pinned SDK installed into tests/js/node_modules on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the JavaScript exporter test needs Node.js and npm on PATH"
    lock = JS / "package-lock.json"
    installed = JS / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS,
                       check=True, timeout=600)  # fmt: skip
    return node


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    with running(config(tmp_path_factory.mktemp("otlp-js"), spool_dir=None)) as collector:
        yield collector


@pytest.mark.parametrize(("encoding", "compression"), [("json", "none"), ("proto", "gzip")])
def test_the_javascript_sdk_exporter_delivers_a_trace(
    node: str, collector: Collector, encoding: str, compression: str
) -> None:
    url = f"http://127.0.0.1:{collector.http_port}/v1/traces"
    sent = subprocess.run(
        [node, str(JS / "send.js"), url, encoding, compression],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    trace_id = sent.stdout.strip()
    trace = collector.span_store.get_trace(trace_id)  # the exporter's request was acknowledged
    assert trace is not None, sent.stderr
    root, child = sorted(trace.spans, key=lambda s: s.kind != "SERVER")
    assert (root.name, root.kind, child.name, child.kind) == (
        "GET /checkout", "SERVER", "charge", "CLIENT",
    )  # fmt: skip
    assert root.service == f"js-{encoding}-{compression}"
    assert root.attributes["deployment.environment"] == "ci"
    assert root.attributes["http.route"] == "/checkout"
    assert child.parent_span_id == root.span_id
    (link,) = child.links
    assert (link.span_id, link.attributes) == (root.span_id, {"reason": "retry-of"})
