"""Where the stack keeps its files, and every environment variable it reads or prints.

Each ``CALLSCOPE_*`` name is defined once, in ``callscope_contract.environment``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from callscope_contract import environment

STACK_DIR_ENV = environment.CALLSCOPE_STACK_DIR
STACK_KEEP_ENV = environment.CALLSCOPE_STACK_KEEP
STACK_TIMEOUT_ENV = environment.CALLSCOPE_STACK_TIMEOUT

# Endpoints, printed by ``callscope stack env`` for clients and tests to read.
KAFKA_BOOTSTRAP_ENV = environment.CALLSCOPE_KAFKA_BOOTSTRAP
ELASTICSEARCH_URL_ENV = environment.CALLSCOPE_ELASTICSEARCH_URL
HBASE_THRIFT_ENV = environment.CALLSCOPE_HBASE_THRIFT
ZOOKEEPER_ENV = environment.CALLSCOPE_ZOOKEEPER

HOST = "127.0.0.1"
"""Every service binds here and nowhere else."""

DEFAULT_TIMEOUT_S = 180.0

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "stack"
"""Poms and config templates, one folder per service, in the source checkout."""


def default_root() -> Path:
    """The stack directory: ``$CALLSCOPE_STACK_DIR`` or the user's cache directory."""
    if os.environ.get(STACK_DIR_ENV):
        return Path(os.environ[STACK_DIR_ENV]).expanduser().resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "callscope" / "stack"


def default_timeout() -> float:
    """Readiness timeout per service, from ``$CALLSCOPE_STACK_TIMEOUT`` when set."""
    value = os.environ.get(STACK_TIMEOUT_ENV)
    return float(value) if value else DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class StackPaths:
    """The directory tree of one stack: shared downloads and one run directory."""

    root: Path

    @property
    def dist(self) -> Path:
        """Fetched distributions, one ``<name>-<version>/`` each, reused by every run dir."""
        return self.root / "dist"

    @property
    def run(self) -> Path:
        """Configs, data, logs and PID files of the running services."""
        return self.root / "run"

    def service_dir(self, name: str) -> Path:
        return self.run / name

    @classmethod
    def default(cls) -> StackPaths:
        return cls(default_root())
