"""What ``status`` and ``up`` report: plain data, printed by the CLI or dumped as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from callscope.stack.errors import StackError


@dataclass
class ProcessStatus:
    name: str
    pid: int | None
    alive: bool
    rss_bytes: int
    log: str


@dataclass
class ServiceStatus:
    """``state``: running | starting | stopped | crashed | external (served, not ours)."""

    name: str
    version: str
    state: str
    ready: bool
    detail: str
    heap: str
    ports: dict[str, int]
    env: dict[str, str]
    run_dir: str
    processes: list[ProcessStatus] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class UpResult:
    name: str
    ok: bool
    started: bool  # False when it was already up
    seconds: float  # from spawn to ready (0 when already up)
    error: StackError | None = None
