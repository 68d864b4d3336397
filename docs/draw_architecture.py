"""Draw docs/architecture.svg from the packages that exist in this checkout.

    python docs/draw_architecture.py        # rewrites docs/architecture.svg

Left: the floors (a package imports only those below it; tests/test_floors.py enforces
it), each with its public subpackages read from the tree. Right: the loop the data
travels, with only the parts whose package exists. Stdlib only, so it runs anywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "architecture.svg"

# Highest floor first (as tests/test_floors.py lists them), with what each one owns.
FLOORS = [
    ("callscope", "the CLI: demo, run, registry, collector, traces, services, stack"),
    ("dashboard", "Dash UI: traces, dependencies, KPIs, governance"),
    ("pipeline", "Spark jobs: dependency graph, KPIs, routing weights"),
    ("collector", "Kafka / spool / OTLP sources, validation, batches, dead letters"),
    ("storage", "SpanStore + AnalyticsStore contracts and backends"),
    ("instrument", "tracing interceptors, KPI recorder, exporters, C hot path"),
    ("rpc", "wire, server, clients, interceptors, governance"),
    ("callscope_contract", "span / KPI records, topics, error codes, env vars (a leaf)"),
]

FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
PACKAGE_FILL, EXTERNAL_FILL, STROKE = "#e8f0fe", "#fff4e0", "#44546a"


def present(package: str) -> bool:
    return (ROOT / package / "__init__.py").is_file()


def subpackages(package: str) -> list[str]:
    return sorted(
        p.name
        for p in (ROOT / package).iterdir()
        if p.is_dir() and not p.name.startswith("_") and (p / "__init__.py").is_file()
    )


class Svg:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.parts: list[str] = []

    def box(self, x: int, y: int, w: int, h: int, lines: list[str], fill: str) -> None:
        self.parts.append(
            f"<rect x='{x}' y='{y}' width='{w}' height='{h}' rx='6' fill='{fill}' "
            f"stroke='{STROKE}' stroke-width='1.2'/>"
        )
        for i, text in enumerate(lines):
            weight = "bold" if i == 0 else "normal"
            size = 13 if i == 0 else 10.5
            self.text(x + 8, y + 17 + i * 14, text, size, weight)

    def text(self, x: float, y: float, text: str, size: float = 11, weight: str = "normal",
             anchor: str = "start") -> None:  # fmt: skip
        self.parts.append(
            f"<text x='{x}' y='{y}' {FONT} font-size='{size}' font-weight='{weight}' "
            f"text-anchor='{anchor}' fill='#1d2733'>{escape(text)}</text>"
        )

    def arrow(self, points: list[tuple[int, int]], label: str = "", at: int = 0) -> None:
        path = " ".join(f"{x},{y}" for x, y in points)
        self.parts.append(
            f"<polyline points='{path}' fill='none' stroke='{STROKE}' stroke-width='1.6' "
            "marker-end='url(#head)'/>"
        )
        if label:
            (x1, y1), (x2, y2) = points[at], points[at + 1]
            self.text((x1 + x2) / 2 + 6, (y1 + y2) / 2 + 4, label, 10)

    def render(self) -> str:
        head = (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{self.width}' "
            f"height='{self.height}' viewBox='0 0 {self.width} {self.height}'>\n"
            "<defs><marker id='head' markerWidth='10' markerHeight='8' refX='9' refY='4' "
            f"orient='auto'><path d='M0,0 L10,4 L0,8 z' fill='{STROKE}'/></marker></defs>\n"
            f"<rect width='{self.width}' height='{self.height}' fill='white'/>\n"
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


def floors(svg: Svg, x: int, y: int, w: int) -> None:
    svg.text(x, y - 10, "Packages, by floor (imports only go down)", 14, "bold")
    for name, owns in [(n, o) for n, o in FLOORS if present(n)]:
        subs = subpackages(name)
        lines = [f"{name}/" + (f"   ({', '.join(s + '/' for s in subs)})" if subs else ""), owns]
        svg.box(x, y, w, 40, lines, PACKAGE_FILL)
        y += 48


def loop(svg: Svg, x: int, y: int) -> None:
    """The data loop; parts whose package is absent are left out."""
    svg.text(x, y - 10, "The loop the data travels", 14, "bold")
    a, b, c, w, h = x, x + 270, x + 520, 210, 58
    rows = [y, y + 105, y + 210, y + 315]
    svg.box(a, rows[0], w, h, ["your services (rpc)", "Server, Client / AsyncClient,",
                               "interceptor chain, cluster layer"], PACKAGE_FILL)  # fmt: skip
    svg.box(b, rows[0], w, h, ["registry (rpc.registry)", "providers, config, weights;",
                               "memory, embedded or ZooKeeper"], PACKAGE_FILL)  # fmt: skip
    svg.box(a, rows[1], w, h, ["instrument", "a CLIENT and a SERVER span", "per call; KPI samples"],
            PACKAGE_FILL)  # fmt: skip
    svg.box(a, rows[2], w, h, ["Kafka", "callscope.spans, callscope.kpis", "embedded: local spool"],
            EXTERNAL_FILL)  # fmt: skip
    svg.box(a, rows[3], w, h, ["collector", "validate, batch, idempotent write,",
                               "dead letters, /metrics"], PACKAGE_FILL)  # fmt: skip
    backends = ", ".join(subpackages("storage"))
    svg.box(b, rows[3], w, h, ["storage", backends, "(SQLite is the embedded default)"],
            PACKAGE_FILL)  # fmt: skip
    svg.arrow([(a + 70, rows[0] + h), (a + 70, rows[1])], "tracing interceptors")
    svg.arrow([(a + 70, rows[1] + h), (a + 70, rows[2])], "export thread")
    svg.arrow([(a + 70, rows[2] + h), (a + 70, rows[3])], "consumer group")
    svg.arrow([(a + w, rows[3] + h // 2), (b, rows[3] + h // 2)])
    svg.arrow([(b, rows[0] + 20), (a + w, rows[0] + 20)])
    svg.text(a + w + 8, rows[0] + 14, "push", 10)
    svg.arrow([(a + w, rows[0] + 44), (b, rows[0] + 44)])
    svg.text(a + w + 8, rows[0] + 40, "register", 10)
    if present("pipeline"):
        svg.box(b, rows[1] + 50, w, h, ["pipeline (Spark)", "dependency graph, KPIs,",
                                        "routing weights"], PACKAGE_FILL)  # fmt: skip
        svg.arrow([(b + 105, rows[3]), (b + 105, rows[1] + 50 + h)], "spans, KPIs")
        svg.arrow([(b + 105, rows[1] + 50), (b + 105, rows[0] + h)], "weights")
    if present("dashboard"):
        lines = ["dashboard (Dash)", "traces, dependencies,", "KPIs, governance"]
        svg.box(c, rows[2], 170, h, lines, PACKAGE_FILL)
        svg.arrow([(b + w, rows[3] + h // 2), (c + 40, rows[3] + h // 2), (c + 40, rows[2] + h)])
        svg.arrow([(b + w, rows[0] + h // 2), (c + 85, rows[0] + h // 2), (c + 85, rows[2])])
    svg.text(a, rows[3] + h + 30, "blue: callscope's packages  ·  orange: a real service", 10)


def draw() -> str:
    svg = Svg(1330, 470)
    floors(svg, 20, 40, 520)
    loop(svg, 600, 40)
    return svg.render()


def main() -> int:
    OUT.write_text(draw())
    print(f"wrote {OUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
