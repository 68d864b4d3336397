"""`callscope trace` and `callscope traces` read what the collector stored."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from callscope.cli import main
from storage import open_analytics_store, open_span_store
from tests.storage.conftest import BACKENDS, backend_url
from tests.storage.spans import span, trace_id

MS = 1000


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """An empty store, as a collector that started makes it (read commands create none)."""
    url = f"sqlite://{tmp_path / 'spans.db'}"
    open_span_store(url).close()
    open_analytics_store(url).close()
    return url


def test_a_trace_prints_as_a_tree_and_as_json(store_url: str, capsys) -> None:
    t = trace_id()
    root = span(t, service="gateway", name="gateway/checkout", kind="SERVER", duration_us=9 * MS)
    child = span(t, parent=root.span_id, service="orders", name="orders/create",
                 kind="CLIENT", start_us=root.start_us + 10, status="ERROR")  # fmt: skip
    with open_span_store(store_url) as store:
        store.write_spans([child, root])
    assert main(["trace", t, "--store", store_url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"trace {t}, 2 spans, 9.000 ms"
    assert out[1].startswith("  SERVER gateway/checkout") and "9.000 ms  OK" in out[1]
    assert out[2].startswith("    CLIENT orders/create")  # a child, indented under its parent
    assert main(["trace", t, "--store", store_url, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["span_id"] for r in records] == [root.span_id, child.span_id]


def test_unknown_and_malformed_trace_ids(store_url: str, capsys) -> None:
    assert main(["trace", trace_id(), "--store", store_url]) == 1
    assert "no trace" in capsys.readouterr().err
    assert main(["trace", "not-hex", "--store", store_url]) == 2
    assert "32 lowercase hex digits" in capsys.readouterr().err


def test_search_filters_and_newest_first(store_url: str, capsys) -> None:
    now_us = int(time.time() * 1e6)
    old, slow, failed, tagged = (trace_id() for _ in range(4))
    with open_span_store(store_url) as store:
        store.write_spans([
            span(old, start_us=now_us - 3 * 3600 * 1_000_000),
            span(slow, start_us=now_us - 3000, duration_us=80 * MS),
            span(failed, start_us=now_us - 2000, status="ERROR"),
            span(tagged, start_us=now_us - 1000, attributes={"zone": "b"}),
        ])  # fmt: skip

    def ids(*extra: str) -> list[str]:
        assert main(["traces", "--service", "orders", "--store", store_url, "--json", *extra]) == 0
        return [json.loads(line)["trace_id"] for line in capsys.readouterr().out.splitlines()]

    assert ids() == [tagged, failed, slow, old]
    assert ids("--since", "1h") == [tagged, failed, slow]
    assert ids("--errors") == [failed]
    assert ids("--min-duration-ms", "50") == [slow]
    assert ids("--tag", "zone=b") == [tagged]
    assert ids("--limit", "1") == [tagged]
    assert main(["traces", "--service", "orders", "--store", store_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and tagged in lines[0] and "ERROR" in lines[1]


def test_bad_search_options_are_clear_errors(store_url: str, capsys) -> None:
    for argv, message in [
        (["--since", "yesterday"], "--since is a number and a unit"),
        (["--tag", "novalue"], "a tag filter is key=value"),
        (["--limit", "0"], "limit must be within"),
        (["--min-duration-ms", "-1"], "not negative"),
    ]:
        assert main(["traces", "--service", "orders", "--store", store_url, *argv]) == 2
        assert message in capsys.readouterr().err


def test_kpis_print_the_recent_windows_of_a_service(store_url: str, capsys) -> None:
    from instrument.model import KpiSample

    now_us = int(time.time() * 1e6)

    def sample(method: str, role: str, start_us: int, count: int) -> KpiSample:
        latency = {"p50": 1.5, "p95": 4.0, "p99": 9.25}
        return KpiSample(service="orders", instance="10.0.0.7:7001", method=method, role=role,
                         window_start_us=start_us, window_s=10.0, count=count, errors=1,
                         qps=count / 10, latency_ms=latency)  # fmt: skip

    with open_analytics_store(store_url) as analytics:
        analytics.write_kpis([
            sample("create", "provider", now_us - 20_000_000, 120),
            sample("create", "consumer", now_us - 10_000_000, 80),
            sample("cancel", "provider", now_us - 5_000_000, 7),
            sample("create", "provider", now_us - 3 * 3600 * 1_000_000, 999),  # too old
        ])  # fmt: skip
    assert main(["kpis", "--service", "orders", "--store", store_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "KPIs of the RPC service 'orders' (its providers and consumers), since 15m:"
    assert lines[1].split()[:4] == ["window", "(UTC)", "service", "instance"]
    assert len(lines) == 5 and "9.250" in lines[2] and " 120 " in lines[2]
    assert main(["kpis", "--service", "orders", "--store", store_url, "--role", "provider",
                 "--method", "create", "--since", "1h", "--json"]) == 0  # fmt: skip
    counts = [json.loads(line)["count"] for line in capsys.readouterr().out.splitlines()]
    assert counts == [120]
    assert main(["kpis", "--service", "nobody", "--store", store_url]) == 0
    assert "no KPI samples" in capsys.readouterr().err


def test_an_unknown_service_lists_the_known_ones(store_url: str, capsys) -> None:
    assert main(["traces", "--service", "orders", "--store", store_url]) == 0
    assert "holds no spans yet" in capsys.readouterr().err
    with open_span_store(store_url) as store:
        store.write_spans([span(service="orders"), span(service="a-very-long-payment-service")])
    assert main(["traces", "--service", "ordres", "--store", store_url]) == 0
    err = capsys.readouterr().err
    assert "no service 'ordres'" in err
    assert "it knows: a-very-long-payment-service, orders" in err and "services --store" in err


def test_services_of_a_store_align_whatever_the_name_lengths(store_url: str, capsys) -> None:
    long = "inventory-reservation-service-eu-west"
    with open_span_store(store_url) as store:
        store.write_spans([span(service="gw", name="gw/checkout"),
                           span(service=long, name="Stock/reserve"),
                           span(service=long, name="Stock/release")])  # fmt: skip
    assert main(["services", "--store", store_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"store {store_url}:"
    header, *rows = lines[1:]
    assert header.split() == ["SERVICE", "OPERATIONS", "NAMES"]
    assert rows[0].split() == ["gw", "1", "gw/checkout"]
    assert rows[1].split() == [long, "2", "Stock/release,", "Stock/reserve"]
    assert rows[0].index("gw/checkout") == rows[1].index("Stock/release")  # names line up
    assert rows[0].index("1 ") == rows[1].index("2 ")  # counts right-aligned
    assert main(["services", "--store", store_url, "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["service"] for r in records] == ["gw", long]


def test_services_of_an_empty_store_say_what_to_check(store_url: str, capsys) -> None:
    assert main(["services", "--store", store_url]) == 1
    assert "is the collector writing to it?" in capsys.readouterr().err


def test_services_of_a_registry_list_their_instances(capsys) -> None:
    from rpc.registry import ServiceInstance, connect

    registry = connect("memory://services-cli")
    registry.register(ServiceInstance("orders.OrderService", "10.0.0.7:7001"))
    registry.register(ServiceInstance("orders.OrderService", "10.0.0.8:7001"))
    try:
        assert main(["services", "--registry", "memory://services-cli"]) == 0
    finally:
        registry.close()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "registry memory://services-cli:"
    assert lines[2].split() == ["orders.OrderService", "2", "10.0.0.7:7001,", "10.0.0.8:7001"]


READ_COMMANDS = [["trace", "0" * 31 + "1"], ["traces", "--service", "orders"],
                 ["kpis", "--service", "orders"], ["services"]]  # fmt: skip


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_read_commands_never_create_a_store(tmp_path: Path, capsys, command: list[str]) -> None:
    """A typo in a path is an error that names it, not an empty store made on the spot."""
    for path in (tmp_path / "no" / "such" / "dir" / "spans.db", tmp_path / "typo.db"):
        assert main([*command, "--store", f"sqlite://{path}"]) == 2
        err = capsys.readouterr().err  # one line, ending with what to do
        assert (
            err.startswith(f"callscope {command[0]}: no store at {path} (") and err.count("\n") == 1
        )
        assert f"collector --store sqlite://{path}` to fill it)" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_what_is_not_a_store_is_a_one_line_error(
    tmp_path: Path, capsys, command: list[str]
) -> None:
    import sqlite3

    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("these are notes, not a database\n" * 200)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    table = "analytics" if command[0] == "kpis" else "spans"
    for path, message in [
        (not_a_database, f"sqlite {not_a_database}: file is not a database"),
        (other, f"no store at {other}: the database has no {table} table"),
        (tmp_path, f"no store at {tmp_path}"),  # a folder
    ]:
        before = path.read_bytes() if path.is_file() else None
        assert main([*command, "--store", f"sqlite://{path}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"callscope {command[0]}: {message}") and err.count("\n") == 1
        assert before is None or path.read_bytes() == before


@pytest.mark.parametrize("backend", BACKENDS[1:])  # elasticsearch, hbase: the real ones
def test_read_commands_on_a_cluster_with_no_such_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys
) -> None:
    url = backend_url(backend, request, tmp_path)  # a prefix nobody wrote to
    for command in READ_COMMANDS:
        assert main([*command, "--store", url]) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith(f"callscope {command[0]}: no store at {url}: ") and err.count("\n") == 1
        )
