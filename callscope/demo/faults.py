"""Faults the demo injects at a time offset: a slow instance, a failing one, a crash.

On the command line: ``--slow payment#2=200ms@20s``, ``--fail payment#3=30%@30s``,
``--crash payment#1@40s``, ``--heal payment#2@60s`` (``@`` omitted: at the default
offset). The supervisor writes a slowdown or failure rate into a small JSON file per
instance, which that instance re-reads four times a second (:class:`FaultSwitch`); a
crash is a SIGKILL of the process. The dashboard asks for faults too, through a
:class:`FaultInbox` the supervisor empties once a second: one path applies them all.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .topology import Instance

__all__ = ["KINDS", "Fault", "FaultInbox", "FaultSwitch", "parse_fault", "write_fault"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")
MAX_DELAY_MS = 10_000
KINDS = ("slow", "fail", "crash", "heal")


@dataclass(frozen=True)
class Fault:
    kind: str  # one of KINDS
    instance: Instance
    at_s: float | None  # seconds after the load starts; None: the run's default
    delay_ms: int = 0
    error_rate: float = 0.0

    def describe(self) -> str:
        what = {"slow": f"+{self.delay_ms} ms a call", "fail": f"{self.error_rate:.0%} errors",
                "crash": "killed", "heal": "healed"}[self.kind]  # fmt: skip
        return f"{self.instance.label} {what}"

    def spec(self) -> str:
        """The command line's form of this fault, without its time (``payment#2=200ms``)."""
        value = {"slow": f"={self.delay_ms}ms", "fail": f"={self.error_rate * 100:g}%"}
        return self.instance.label + value.get(self.kind, "")


def _seconds(text: str) -> float:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"a time is like 20s or 500ms, not {text!r}")
    value = float(match[1]) / (1000 if match[2] == "ms" else 1)
    if not math.isfinite(value) or value > 86_400:
        raise ValueError(f"a time offset is at most a day, not {text!r}")
    return value


def parse_fault(kind: str, text: str) -> Fault:
    """``payment#2=200ms@20s`` (slow), ``payment#3=30%@30s`` (fail), ``payment#1@40s``
    (crash), ``payment#2@60s`` (heal: no delay, no failures)."""
    spec, _, at = text.partition("@")
    at_s = _seconds(at) if at else None
    label, _, value = spec.partition("=")
    instance = Instance.parse(label)
    if kind in ("crash", "heal"):
        if value:
            raise ValueError(f"--{kind} takes INSTANCE[@TIME], not {text!r}")
        return Fault(kind, instance, at_s)
    if kind == "slow":
        delay_ms = round(_seconds(value) * 1000) if value else 0
        if not 1 <= delay_ms <= MAX_DELAY_MS:
            raise ValueError(f"--slow {text!r}: a delay of 1ms..{MAX_DELAY_MS}ms, like =200ms")
        return Fault(kind, instance, at_s, delay_ms=delay_ms)
    if kind == "fail":
        rate = value.removesuffix("%")
        try:
            percent = float(rate)
        except ValueError:
            percent = math.nan
        if not value.endswith("%") or not 0 < percent <= 100:
            raise ValueError(f"--fail {text!r}: a failure rate of 1%..100%, like =30%")
        return Fault(kind, instance, at_s, error_rate=percent / 100)
    raise ValueError(f"unknown fault kind {kind!r}")


def fault_file(directory: Path, instance: Instance) -> Path:
    return directory / f"{instance.service}-{instance.index}.json"


def write_fault(directory: Path, fault: Fault, current: dict[str, float]) -> dict[str, float]:
    """Add ``fault`` to what ``instance`` already suffers; atomically, as the reader polls."""
    state = {} if fault.kind == "heal" else dict(current)
    if fault.kind == "slow":
        state["delay_ms"] = fault.delay_ms
    elif fault.kind == "fail":
        state["error_rate"] = fault.error_rate
    path = fault_file(directory, fault.instance)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)
    return state


class FaultInbox:
    """Faults asked for while the demo runs (by the dashboard), one JSON line each.

    :meth:`post` appends ``{"kind": ..., "spec": "payment#2=200ms"}``; the supervisor's
    :meth:`take` reads the lines added since, each checked as the command line checks
    it. A take reads at most ``MAX_TAKE`` bytes and a line is at most ``MAX_LINE``: a
    flood waits for later takes, an overlong or bad line is skipped with its reason. The
    file holds at most ``MAX_BYTES`` (some 16,000 requests, more than a person clicks in a
    run): past it :meth:`post` refuses, so a client looping on the page cannot fill the disk.
    """

    NAME = "requests.jsonl"
    MAX_LINE = 1024
    MAX_TAKE = 64 * 1024
    MAX_BYTES = 1024 * 1024

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.NAME
        self._offset = 0

    def post(self, fault: Fault) -> None:
        line = json.dumps({"kind": fault.kind, "spec": fault.spec()}) + "\n"
        with open(self.path, "a", encoding="utf-8") as out:  # one write: lines stay whole
            if out.tell() + len(line) > self.MAX_BYTES:
                raise ValueError(
                    f"this run has taken {self.MAX_BYTES} bytes of fault requests already; "
                    "start a new demo to ask for more"
                )
            out.write(line)

    def take(self) -> tuple[list[Fault], list[str]]:
        """The faults posted since the last take, and why any line was refused."""
        try:
            with open(self.path, "rb") as inbox:
                inbox.seek(self._offset)
                data = inbox.read(self.MAX_TAKE)
        except FileNotFoundError:
            return [], []
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) == self.MAX_TAKE:  # no line ends within a whole take
            self._offset += len(data)
            return [], [f"a request over {self.MAX_TAKE} bytes was skipped"]
        self._offset += end
        faults, refused = [], []
        for raw in data[:end].splitlines():
            try:
                if len(raw) > self.MAX_LINE:
                    raise ValueError(f"a request is at most {self.MAX_LINE} bytes")
                request = json.loads(raw)
                kind, spec = request["kind"], request["spec"]
                if kind not in KINDS or not isinstance(spec, str) or "@" in spec:
                    raise ValueError(f"not a fault request: {raw[:80]!r}")
                faults.append(parse_fault(kind, spec))
            except (ValueError, KeyError, TypeError) as err:
                refused.append(str(err))
        return faults, refused


class FaultSwitch:
    """The instance's side: the delay and failure rate it must show now."""

    POLL_S = 0.25

    def __init__(self, directory: Path, instance: Instance) -> None:
        self._path = fault_file(directory, instance)
        self._checked = 0.0
        self._mtime = 0.0
        self.delay_s = 0.0
        self.error_rate = 0.0

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.POLL_S:
            return
        self._checked = now
        try:
            mtime = self._path.stat().st_mtime
            if mtime == self._mtime:
                return
            state = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return  # no fault yet (or being replaced): keep the last state
        self._mtime = mtime
        self.delay_s = min(float(state.get("delay_ms", 0)), MAX_DELAY_MS) / 1000
        self.error_rate = min(max(float(state.get("error_rate", 0.0)), 0.0), 1.0)

    def should_fail(self) -> bool:
        return self.error_rate > 0 and random.random() < self.error_rate
