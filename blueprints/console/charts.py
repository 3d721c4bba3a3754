"""Bar charts drawn by the server as SVG: no chart library for halls' closed networks, no
script, and the page's CSP allows them as they are. A chart is geometry computed here; the
`console/_chart.html` macro only draws it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
ROW_HEIGHT = 30
LABEL_WIDTH = 170
VALUE_WIDTH = 70


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as printed beside the bar
    y: int
    width: int


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: tuple[Bar, ...]
    width: int
    height: int
    label_width: int
    bar_height: int


def horizontal_bars(title: str, series: Sequence[tuple[str, float]], *, unit: str = "") -> BarChart:
    """One horizontal bar per (label, value), scaled to the largest value."""
    largest = max((value for _, value in series), default=0) or 1
    room = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = tuple(
        Bar(
            label=label,
            value=value,
            shown=f"{value:g}{unit}",
            y=index * ROW_HEIGHT,
            width=max(int(room * value / largest), 1 if value else 0),
        )
        for index, (label, value) in enumerate(series)
    )
    return BarChart(
        title=title,
        bars=bars,
        width=WIDTH,
        height=max(len(bars), 1) * ROW_HEIGHT,
        label_width=LABEL_WIDTH,
        bar_height=ROW_HEIGHT - 10,
    )
