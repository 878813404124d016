"""Charts drawn on the server as SVG shapes (no script, no inline style: the CSP allows neither)."""

from __future__ import annotations

from dataclasses import dataclass

from .selectors.reports import Week

WIDTH, HEIGHT, BOTTOM, LEFT = 640, 220, 24, 32
STATUS_ORDER = ["approved", "pending", "rejected", "withdrawn"]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    status: str
    title: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]  # x, text under each week
    ticks: list[tuple[float, int]]  # y, value on the left axis
    baseline: float


def weeks_chart(weeks: list[Week]) -> Chart:
    """Stacked bars of requests per week, coloured by status (classes in app.css)."""
    top = max([w.total for w in weeks] + [1])
    plot = HEIGHT - BOTTOM - 8
    slot = (WIDTH - LEFT) / max(len(weeks), 1)
    bars, labels = [], []
    for index, week in enumerate(weeks):
        x = LEFT + index * slot + slot * 0.15
        y = HEIGHT - BOTTOM
        for status in STATUS_ORDER:
            count = week.counts.get(status, 0)
            if not count:
                continue
            height = plot * count / top
            y -= height
            title = f"week of {week.start:%d %b}: {count} {status}"
            bars.append(
                Bar(round(x, 1), round(y, 1), round(slot * 0.7, 1), round(height, 1), status, title)
            )
        labels.append((round(x + slot * 0.35, 1), f"{week.start:%d %b}"))
    ticks = [(round(HEIGHT - BOTTOM - plot * v / top, 1), v) for v in sorted({0, top // 2, top})]
    return Chart(WIDTH, HEIGHT, bars, labels, ticks, HEIGHT - BOTTOM)
