"""How long the dashboard takes to show a 1,000-span trace, in a real headless Chromium.

1. A SQLite store holds one trace of ``--spans`` spans (default 1,000; from
   ``tests/dashboard/seed.make_trace``, with an error and retry events). The dashboard
   serves it on 127.0.0.1 (ephemeral port).
2. Chromium (Debian's, headless, fresh profile) opens ``/trace/ID`` ``--rounds`` times; a
   round is the time from asking for the page until the waterfall shows one bar per span
   (page, scripts, the layout, the callbacks, the figure drawn). The first round is
   reported apart (``cold``: nothing cached yet); the goal is on the others (``warm``).
3. Peer, same run, same browser: the same figure drawn by plotly.js alone on a static page
   (no server, no Dash): the floor the chart library sets. ``ratio`` = dashboard / plotly.js.

The goal (issue 14): a 1,000-span trace renders within 2 s. The last line is one JSON object.

    .venv/bin/python benchmarks/dashboard_render.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import plotly  # noqa: E402

from dashboard import create_app, start, waterfall_figure  # noqa: E402
from storage import open_span_store  # noqa: E402
from tests.dashboard.browser import count, open_browser  # noqa: E402
from tests.dashboard.seed import make_trace  # noqa: E402

BARS = "#trace-waterfall .barlayer .point"
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def until_bars(browser, css: str, expected: int, began: float, timeout: float = 120.0) -> float:
    while count(browser, css) < expected:
        if time.perf_counter() - began > timeout:
            raise TimeoutError(f"{expected} bars did not show within {timeout} s")
        time.sleep(0.01)
    return time.perf_counter() - began


def bare_plotly_page(figure: dict, directory: Path) -> Path:
    """A static page that draws ``figure`` with plotly.js when opened."""
    page = directory / "waterfall.html"
    page.write_text(
        f'<html><body><div id="g"></div><script src="file://{_PLOTLY_JS}"></script>'
        f"<script>Plotly.newPlot('g', {json.dumps(figure)}.data, "
        f"{json.dumps(figure)}.layout);</script></body></html>"
    )
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="callscope-render-"))
    url = f"sqlite://{workdir / 'spans.db'}"
    spans = make_trace(random.Random(7), int(time.time() * 1e6) - 60_000_000, args.spans,
                       error=True)  # fmt: skip
    trace_id = spans[0].trace_id
    with open_span_store(url) as store:
        store.write_spans(spans)
        trace = store.get_trace(trace_id)
    began = time.perf_counter()
    figure = waterfall_figure(trace)
    build_s = time.perf_counter() - began
    page = bare_plotly_page(figure, workdir)
    dashboard = start(create_app(url))
    browser = open_browser()
    ours: list[float] = []
    peer: list[float] = []
    try:
        for _ in range(args.rounds):
            began = time.perf_counter()
            browser.get(f"{dashboard.url}/trace/{trace_id}")
            ours.append(until_bars(browser, BARS, args.spans, began))
            began = time.perf_counter()
            browser.get(page.as_uri())
            peer.append(until_bars(browser, "#g .barlayer .point", args.spans, began))
            print(f"round: dashboard {ours[-1]:.3f} s, plotly.js alone {peer[-1]:.3f} s",
                  flush=True)  # fmt: skip
    finally:
        browser.quit()
        dashboard.stop()
    warm, warm_peer = statistics.median(ours[1:]), statistics.median(peer[1:])
    print(json.dumps({
        "spans": args.spans, "cold_s": round(ours[0], 3), "warm_median_s": round(warm, 3),
        "warm_max_s": round(max(ours[1:]), 3), "plotly_js_alone_median_s": round(warm_peer, 3),
        "ratio": round(warm / warm_peer, 2), "figure_build_s": round(build_s, 4),
        "goal_s": 2.0, "met": warm <= 2.0, "load_1m": os.getloadavg()[0],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
