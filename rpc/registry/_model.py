"""What a provider registers about itself."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ServiceInstance:
    """One provider of one service; ``address`` is ``host:port``."""

    service: str
    address: str
    version: str = ""
    group: str = ""
    weight: int = 100
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    pid: int = field(default_factory=os.getpid, compare=False)
    start_time: float = field(default_factory=time.time, compare=False)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.service, self.version, self.group, self.address)
