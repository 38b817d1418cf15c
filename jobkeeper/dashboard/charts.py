"""Small inline-SVG line charts (no JavaScript, no library): the points of a polyline in a fixed box."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 96
HEIGHT = 28
PAD = 2


@dataclass(frozen=True, slots=True)
class Spark:
    points: str
    """`x,y x,y …` for <polyline points>; empty when there is nothing to draw."""
    latest: float | None
    peak: float
    width: int = WIDTH
    height: int = HEIGHT


def spark(values: Sequence[float], *, ceiling: float | None = None) -> Spark:
    """A sparkline of `values` (oldest first), scaled to the peak (or `ceiling`, e.g. 1.0 for rates)."""
    if not values:
        return Spark(points="", latest=None, peak=0.0)
    peak = max(values)
    top = ceiling if ceiling is not None else peak
    top = top if top > 0 else 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    coords = []
    for index, value in enumerate(values):
        x = PAD + index * step
        y = HEIGHT - PAD - (min(value, top) / top) * (HEIGHT - 2 * PAD)
        coords.append(f"{x:.1f},{y:.1f}")
    if len(coords) == 1:  # one snapshot: a flat line across the box
        coords.append(f"{WIDTH - PAD:.1f},{coords[0].split(',')[1]}")
    return Spark(points=" ".join(coords), latest=values[-1], peak=peak)
