"""What every service recipe provides, and helpers recipes share to write configs and JVM args.

A recipe knows one service: its artifact, ports, heap, config files, the processes to launch,
its readiness probe and the endpoint variables clients read. It starts and stops nothing itself.
"""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from callscope.stack.fetch import Artifact
from callscope.stack.process import Launch
from callscope.stack.settings import DEPLOY_DIR
from callscope.stack.toolchain import Java

JVM_COMMON = ["-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
              "-Djava.net.preferIPv4Stack=true"]  # fmt: skip


@dataclass(frozen=True)
class Port:
    number: int
    role: str


@dataclass(frozen=True)
class Runtime:
    """What ``prepare`` gets: the Java to run on, the fetched distribution, the run directory."""

    java: Java
    home: Path
    run_dir: Path


class Service(ABC):
    """One service of the stack (see the module docstring)."""

    name: ClassVar[str]
    artifact: ClassVar[Artifact]
    heap: ClassVar[str]  # shown by ``status``; the JVM flags live in ``prepare``
    ports: ClassVar[tuple[Port, ...]]
    processes: ClassVar[tuple[str, ...]]  # one PID file and log per name, started in order
    stop_grace_s: ClassVar[float] = 20.0

    @property
    def client_port(self) -> int:
        return self.ports[0].number

    @abstractmethod
    def prepare(self, rt: Runtime) -> list[Launch]:
        """Write configs under ``rt.run_dir``; return the processes to start, in order."""

    @abstractmethod
    def probe(self) -> None:
        """Return when ready, raise ``NotReady`` otherwise (see ``callscope.stack.probes``)."""

    @abstractmethod
    def env(self) -> dict[str, str]:
        """Endpoint variables for clients, e.g. ``CALLSCOPE_KAFKA_BOOTSTRAP``."""


def render(service: str, template: str, dest: Path, **values: object) -> Path:
    """Fill ``deploy/stack/<service>/<template>`` (``${name}`` placeholders) into ``dest``."""
    text = (DEPLOY_DIR / service / template).read_text()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(string.Template(text).substitute({k: str(v) for k, v in values.items()}))
    return dest


def classpath(*entries: Path) -> str:
    """A Java classpath; a directory of jars is given as ``dir/*``."""
    return ":".join(str(e / "*") if (e.is_dir() and e.name == "lib") else str(e) for e in entries)
