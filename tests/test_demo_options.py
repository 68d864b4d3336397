"""``callscope demo``'s fault options and their errors (no process is started)."""

from __future__ import annotations

import pytest

from callscope.cli import main
from callscope.demo.faults import FaultInbox, FaultSwitch, parse_fault, write_fault
from callscope.demo.topology import EXPECTED_EDGES, Instance, instances


def test_faults_parse_from_the_command_line() -> None:
    slow = parse_fault("slow", "payment#2=200ms@20s")
    assert (slow.instance, slow.delay_ms, slow.at_s) == (Instance("payment", 2), 200, 20.0)
    fail = parse_fault("fail", "inventory=30%")
    assert (fail.instance.label, fail.error_rate, fail.at_s) == ("inventory#1", 0.3, None)
    crash = parse_fault("crash", "payment#1@1.5s")
    assert (crash.kind, crash.at_s) == ("crash", 1.5)


@pytest.mark.parametrize(
    ("kind", "text", "says"),
    [
        ("slow", "payment#4=200ms", "payment has instances #1..#3"),
        ("slow", "billing#1=200ms", "no service 'billing'"),
        ("slow", "payment#1=0ms", "a delay of 1ms..10000ms"),
        ("slow", "payment#1=fast", "a time is like 20s"),
        ("fail", "payment#1=150%", "a failure rate of 1%..100%"),
        ("fail", "payment#1=nan%", "a failure rate"),
        ("crash", "payment#1=1s", "--crash takes INSTANCE[@TIME]"),
        ("crash", "payment#1@inf", "a time is like"),
    ],
)
def test_a_bad_fault_says_what_is_expected(kind: str, text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse_fault(kind, text)


def test_the_command_refuses_bad_options_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--slow", "payment#9=1ms"]) == 2
    assert "payment has instances #1..#3" in capsys.readouterr().err
    assert main(["demo", "--duration", "30", "--crash", "payment#1@40s"]) == 2
    assert "comes after --duration 30" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--qps", "0"])
    assert "0.1..2000" in capsys.readouterr().err


def test_an_instance_sees_the_fault_the_supervisor_writes(tmp_path) -> None:
    instance = Instance("payment", 2)
    switch = FaultSwitch(tmp_path, instance)
    switch.refresh()
    assert (switch.delay_s, switch.error_rate) == (0.0, 0.0)
    state = write_fault(tmp_path, parse_fault("slow", "payment#2=250ms"), {})
    write_fault(tmp_path, parse_fault("fail", "payment#2=100%"), state)
    switch._checked = 0.0  # poll now
    switch.refresh()
    assert (switch.delay_s, switch.error_rate) == (0.25, 1.0)
    assert switch.should_fail()


def test_the_topology_is_the_issues_shop() -> None:
    assert {(a, b) for a, b in EXPECTED_EDGES} == {
        ("loadgen", "gateway"), ("gateway", "orders"), ("orders", "inventory"),
        ("orders", "payment"), ("payment", "ledger"),
    }  # fmt: skip
    assert [i.label for i in instances() if i.service == "payment"] == [
        "payment#1", "payment#2", "payment#3",
    ]  # fmt: skip


def test_heal_lifts_what_an_instance_suffers(tmp_path) -> None:
    heal = parse_fault("heal", "payment#2@60s")
    assert (heal.kind, heal.at_s, heal.describe()) == ("heal", 60.0, "payment#2 healed")
    state = write_fault(tmp_path, parse_fault("slow", "payment#2=250ms"), {})
    assert write_fault(tmp_path, heal, state) == {}
    switch = FaultSwitch(tmp_path, Instance("payment", 2))
    switch.refresh()
    assert (switch.delay_s, switch.error_rate) == (0.0, 0.0)
    with pytest.raises(ValueError, match="--heal takes INSTANCE"):
        parse_fault("heal", "payment#2=1ms")


def test_the_inbox_takes_each_request_once_checked_and_bounded(tmp_path) -> None:
    inbox = FaultInbox(tmp_path)
    assert inbox.take() == ([], [])  # nothing posted yet
    for fault in (parse_fault("slow", "payment#2=200ms"), parse_fault("fail", "inventory=30%"),
                  parse_fault("crash", "payment#1"), parse_fault("heal", "payment#2")):  # fmt: skip
        inbox.post(fault)
    with open(inbox.path, "a") as raw:  # what a hostile or broken writer might add
        raw.write('{"kind": "slow", "spec": "payment#9=1ms"}\n')
        raw.write('{"kind": "rm -rf", "spec": "payment#1"}\n')
        raw.write("not json\n")
        raw.write('{"kind": "slow", "spec": "payment#1=' + "9" * 2000 + 'ms"}\n')
        raw.write('{"kind": "slow", "spec": "payment#3=5')  # still being written
    faults, refused = inbox.take()
    assert [f.spec() for f in faults] == ["payment#2=200ms", "inventory#1=30%", "payment#1",
                                          "payment#2"]  # fmt: skip
    assert len(refused) == 4 and "payment has instances #1..#3" in refused[0]
    assert "at most 1024 bytes" in refused[3]
    with open(inbox.path, "a") as raw:
        raw.write('ms"}\n')
    assert [f.spec() for f in inbox.take()[0]] == ["payment#3=5ms"]  # the line, once whole
    assert inbox.take() == ([], [])
    with open(inbox.path, "a") as raw:
        raw.write("x" * (FaultInbox.MAX_TAKE * 2) + "\n")
    assert "skipped" in inbox.take()[1][0]  # a flood is read a bounded take at a time


def test_the_inbox_refuses_posts_past_its_size(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(FaultInbox, "MAX_BYTES", 4096)
    inbox = FaultInbox(tmp_path)
    with pytest.raises(ValueError, match="start a new demo"):
        for _ in range(200):  # about 40 bytes each: more than 4 KiB in all
            inbox.post(parse_fault("heal", "payment#1"))
    assert 4000 < inbox.path.stat().st_size <= 4096
    assert len(inbox.take()[0]) > 90  # every request taken in is there to apply
