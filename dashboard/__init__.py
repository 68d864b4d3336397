"""callscope dashboard: browse call chains in a Dash app (``callscope dashboard``).

Pages: traces (search, scatter, table), trace (waterfall, span detail, critical path),
compare (two traces' structures), dependencies, services, governance, alarms (what the
pipeline's alarm rules raised, paged). It reads only through ``storage``'s public API.
"""

from __future__ import annotations

from ._app import Dashboard, ExtraPage, create_app, start
from ._search import SearchParams
from ._sources import Sources, Unavailable
from ._waterfall import waterfall_figure

__all__ = [
    "Dashboard",
    "ExtraPage",
    "SearchParams",
    "Sources",
    "Unavailable",
    "create_app",
    "start",
    "waterfall_figure",
]
