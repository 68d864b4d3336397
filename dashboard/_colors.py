"""One colour per service, the same on every page and every run (a hash, not an order)."""

from __future__ import annotations

import zlib

__all__ = ["ERROR_COLOR", "GOVERNANCE_COLOR", "PATH_COLOR", "service_color"]

# Plotly's "D3" qualitative palette without its red, which marks errors.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79",
)  # fmt: skip
ERROR_COLOR = "#d62728"
GOVERNANCE_COLOR = "#ff9f1c"
PATH_COLOR = "#111111"


def service_color(service: str) -> str:
    return _PALETTE[zlib.crc32(service.encode()) % len(_PALETTE)]
