"""The leaderboard's pictures, drawn on the server as SVG shapes for the template.

No script and no inline style (the CSP allows neither): colours are SVG presentation
attributes computed here, text takes the classes of static/css/leaderboard.css. Every
shape has a <title>, so a pointer or a screen reader gets the figure behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, LABEL, ROW = 680, 190, 24
RED, WHITE, BLUE, PALE, DARK = (
    (202, 0, 32),
    (247, 247, 247),
    (5, 113, 176),
    (239, 243, 255),
    (8, 48, 107),
)


def _short(name: str, length: int = 26) -> str:
    return name if len(name) <= length else name[: length - 1] + "…"


def _mix(low: tuple[int, int, int], high: tuple[int, int, int], t: float) -> tuple[int, ...]:
    return tuple(round(a + (b - a) * t) for a, b in zip(low, high, strict=True))


def _hex(rgb: tuple[int, ...]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _dark(rgb: tuple[int, ...]) -> bool:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 140


@dataclass(frozen=True)
class Interval:
    y: float
    x_low: float
    x_high: float
    x: float
    label: str
    value: str
    title: str


@dataclass(frozen=True)
class RatingsChart:
    width: int
    height: int
    label_x: int
    axis_y: float
    rows: list[Interval]
    ticks: list[tuple[float, int]]  # x, rating


def _nice_step(span: float) -> int:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if span / step <= 6:
            return step
    return 10000


def ratings_chart(rows: list[dict[str, Any]]) -> RatingsChart:
    """Each model's rating as a dot on its 95% interval, best at the top."""
    low = min([row["lower"] for row in rows] + [1000.0])
    high = max([row["upper"] for row in rows] + [1000.0])
    step = _nice_step(max(high - low, 1.0))
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    start, end = (start - step, end + step) if start == end else (start, end)
    plot_left, plot_right = LABEL + 10, WIDTH - 70

    def x(value: float) -> float:
        return round(plot_left + (value - start) / (end - start) * (plot_right - plot_left), 1)

    drawn = []
    for index, row in enumerate(rows):
        title = (
            f"{row['name']}: {row['rating']:.0f}, 95% interval "
            f"{row['lower']:.0f} to {row['upper']:.0f}, rank {row['rank']}"
        )
        drawn.append(
            Interval(
                y=12 + index * ROW + ROW / 2,
                x_low=x(row["lower"]),
                x_high=x(row["upper"]),
                x=x(row["rating"]),
                label=_short(row["name"]),
                value=f"{row['rating']:.0f}",
                title=title,
            )
        )
    axis_y = 12 + len(rows) * ROW + 4
    ticks = [(x(value), value) for value in range(int(start), int(end) + 1, step)]
    return RatingsChart(WIDTH, int(axis_y + 28), LABEL, axis_y, drawn, ticks)


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    cx: float
    cy: float
    fill: str
    text: str
    dark: bool
    title: str


@dataclass(frozen=True)
class Heatmap:
    width: int
    height: int
    size: int  # of a cell
    left: int
    top: int
    cells: list[Cell]
    rows: list[tuple[int, str]]  # y of the label's middle, text
    columns: list[tuple[int, str]]  # x of the label's middle, text
    show_text: bool

    def cells_svg(self) -> SafeString:
        """The cells as SVG markup: built here, as a template loop over 900 cells is slow."""
        parts = []
        for cell in self.cells:
            rect = (
                f'<rect x="{cell.x}" y="{cell.y}" width="{self.size}" height="{self.size}" '
                f'fill="{cell.fill}"/>'
            )
            text = ""
            if self.show_text:
                shade = " lb-cell-dark" if cell.dark else ""
                text = (
                    f'<text class="lb-cell{shade}" x="{cell.cx}" y="{cell.cy}" '
                    f'text-anchor="middle" dominant-baseline="central">{escape(cell.text)}</text>'
                )
            parts.append(f"<g><title>{escape(cell.title)}</title>{rect}{text}</g>")
        return mark_safe("".join(parts))  # noqa: S308 - every text in it is escaped above


def _heatmap(
    names: list[str], values: list[list[Any]], colour: Any, text: Any, title: Any
) -> Heatmap:
    count = len(names)
    size = max(14, min(44, 440 // max(count, 1)))
    labels = [_short(name, 24) for name in names]
    # Column labels slant up at 60 degrees: about 6 px a character, times sin 60.
    left, top = LABEL, 24 + round(0.87 * 6 * max([len(label) for label in labels] + [4]))
    cells = []
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if i == j or value is None:
                continue
            rgb = colour(value)
            cells.append(
                Cell(
                    x=left + j * size,
                    y=top + i * size,
                    cx=left + j * size + size / 2,
                    cy=top + i * size + size / 2,
                    fill=_hex(rgb),
                    text=text(value),
                    dark=_dark(rgb),
                    title=title(names[i], names[j], value),
                )
            )
    return Heatmap(
        width=left + count * size + 96,  # room for the last column's slanted label
        height=top + count * size + 8,
        size=size,
        left=left,
        top=top,
        cells=cells,
        rows=[(top + i * size + size // 2, label) for i, label in enumerate(labels)],
        columns=[(left + j * size + size // 2, label) for j, label in enumerate(labels)],
        show_text=size >= 30,
    )


def win_fraction_heatmap(names: list[str], wins: list[list[float | None]]) -> Heatmap:
    """Share of the decisive battles the row's model won against the column's (ties left out)."""

    def colour(value: float) -> tuple[int, ...]:
        return _mix(WHITE, BLUE, 2 * value - 1) if value >= 0.5 else _mix(RED, WHITE, 2 * value)

    return _heatmap(
        names,
        wins,
        colour,
        lambda value: f"{value:.2f}",
        lambda a, b, value: f"{a} beat {b} in {value:.0%} of their decisive battles",
    )


def battle_count_heatmap(names: list[str], battles: list[list[int]]) -> Heatmap:
    """Counted battles between the row's model and the column's, ties included."""
    top = max([max(row, default=0) for row in battles] + [1])

    def colour(value: int) -> tuple[int, ...]:
        return _mix(PALE, DARK, math.sqrt(value / top))

    return _heatmap(
        names,
        [[value or None for value in row] for row in battles],
        colour,
        str,
        lambda a, b, value: f"{a} and {b}: {value} battles",
    )
