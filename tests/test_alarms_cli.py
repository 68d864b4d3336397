"""``callscope alarms``: an aligned table, newest first, paged with a cursor."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from callscope.cli import main
from storage import FIRING, RESOLVED, Alarm, open_analytics_store


def test_alarms_list_newest_first_a_page_at_a_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'a.db'}"
    now = int(time.time() * 1e6)
    with open_analytics_store(url) as analytics:
        analytics.write_alarms(
            Alarm("slow", "instance", "orders", f"10.0.0.{i}:7001", now - i * 60_000_000, 60.0,
                  FIRING if i % 2 else RESOLVED, "p99_ms", ">", 200.0, 250.5 if i % 2 else None,
                  f"alarm {i}")
            for i in range(1, 4)
        )  # fmt: skip
    assert main(["alarms", "--store", url, "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["WINDOW", "(UTC)", "STATE", "RULE", "SCOPE", "VALUE", "THRESHOLD",
                                "MESSAGE"]  # fmt: skip
    assert [line.split()[2] for line in lines[1:]] == ["firing", "resolved"]
    assert "orders @ 10.0.0.1:7001" in lines[1] and lines[1].endswith("alarm 1")
    assert lines[1].index("250.5  ") + 4 == lines[2].index("-  >")  # numbers align right
    cursor = err.split("--cursor ", 1)[1].strip()
    assert main(["alarms", "--store", url, "--json", "--cursor", cursor]) == 0
    (last,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert last["target"] == "10.0.0.3:7001" and last["state"] == FIRING
    assert main(["alarms", "--store", url, "--service", "stock"]) == 1
    assert "no alarms" in capsys.readouterr().err
    assert main(["alarms", "--store", url, "--limit", "0"]) == 2
    assert "an alarm page holds 1..500 alarms" in capsys.readouterr().err
