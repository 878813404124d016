"""Charts drawn on the server as SVG shapes (no script, no inline style: the CSP allows neither)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .selectors.reports import DecisionWeek, FileDownloads, Week

WIDTH, HEIGHT, BOTTOM, LEFT = 640, 220, 24, 32
PLOT = HEIGHT - BOTTOM - 8
STATUS_ORDER = ["approved", "pending", "rejected", "withdrawn"]
FILE_ROW = 30  # the height of one file's name and bar


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


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class FileChart:
    width: int
    height: int
    bars: list[Bar]
    texts: list[Text]


def _ticks(top: int) -> list[tuple[float, int]]:
    return [(round(HEIGHT - BOTTOM - PLOT * v / top, 1), v) for v in sorted({0, top // 2, top})]


def weeks_chart(weeks: list[Week]) -> Chart:
    """Stacked bars of requests per week, coloured by status (classes in app.css)."""
    top = max([w.total for w in weeks] + [1])
    slot = (WIDTH - LEFT) / max(len(weeks), 1)
    bars, labels = [], []
    for index, week in enumerate(weeks):
        x = LEFT + index * slot + slot * 0.15
        y = HEIGHT - BOTTOM
        for status in STATUS_ORDER:
            count = week.counts.get(status, 0)
            if not count:
                continue
            height = PLOT * count / top
            y -= height
            title = f"week of {week.start:%d %b}: {count} {status}"
            bars.append(
                Bar(round(x, 1), round(y, 1), round(slot * 0.7, 1), round(height, 1), status, title)
            )
        labels.append((round(x + slot * 0.35, 1), f"{week.start:%d %b}"))
    return Chart(WIDTH, HEIGHT, bars, labels, _ticks(top), HEIGHT - BOTTOM)


def decisions_chart(weeks: list[DecisionWeek]) -> Chart:
    """Two bars per week, side by side: the median and the 90th percentile of hours to a
    reviewer's decision, for the decisions made that week."""
    top = math.ceil(max([w.p90_hours or 0 for w in weeks] + [1]))
    slot = (WIDTH - LEFT) / max(len(weeks), 1)
    bars, labels = [], []
    for index, week in enumerate(weeks):
        x = LEFT + index * slot + slot * 0.15
        pairs = (
            ("median", "median", week.median_hours),
            ("p90", "90th percentile", week.p90_hours),
        )
        for offset, (kind, name, hours) in enumerate(pairs):
            if hours is None:
                continue
            height = PLOT * hours / top
            title = f"week of {week.start:%d %b}: {name} {hours:.1f} h of {week.decided} decided"
            left, y = x + offset * slot * 0.35, HEIGHT - BOTTOM - height
            bars.append(
                Bar(
                    round(left, 1),
                    round(y, 1),
                    round(slot * 0.35, 1),
                    round(height, 1),
                    kind,
                    title,
                )
            )
        labels.append((round(x + slot * 0.35, 1), f"{week.start:%d %b}"))
    return Chart(WIDTH, HEIGHT, bars, labels, _ticks(top), HEIGHT - BOTTOM)


def downloads_chart(files: list[FileDownloads]) -> FileChart:
    """One horizontal bar per file under its name, its count of downloads at the bar's end."""
    top = max([f.downloads for f in files] + [1])
    room = WIDTH - 60  # for the count after the longest bar
    bars, texts = [], []
    for index, file in enumerate(files):
        y, width = index * FILE_ROW, round(room * file.downloads / top, 1)
        texts.append(Text(0, y + 11, file.name))
        title = f"{file.name}: {file.downloads} download{'' if file.downloads == 1 else 's'}"
        bars.append(Bar(0, y + 14, width, 12, "downloads", title))
        texts.append(Text(round(width + 6, 1), y + 24, str(file.downloads)))
    return FileChart(WIDTH, max(len(files), 1) * FILE_ROW, bars, texts)
