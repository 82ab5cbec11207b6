"""Min/max-per-bucket downsampling of a series to about a chart's width in points.

A chart of 1,000 pixels cannot show more than 1,000 x positions; sending it a million points
costs seconds of transfer and drawing for no visible difference. Keeping the minimum and the
maximum of each pixel bucket (in x order) draws the same envelope as the full series — spikes
and NaN-free extremes stay visible, unlike plain striding or averaging.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

__all__ = ["minmax_indices", "plottable"]


def plottable(value: object) -> Optional[float]:
    """A chartable float for a stored value: bools as 0/1; text, NaN and ±inf as None (a gap)."""
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None  # type: ignore[return-value]
    if t is int or t is bool:
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, (int, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    return None


def minmax_indices(xs: Sequence[float], ys: Sequence[Optional[float]], points: int) -> List[int]:
    """Indices to keep so that at most about ``points`` points remain (``points <= 0``: all).

    ``xs`` must be sorted ascending. The x range is cut into ``points // 2`` equal buckets; each
    keeps the index of its smallest and of its largest y, in x order, so the drawn envelope is
    the full series'. A bucket whose values are all gaps (None) keeps one gap, so the line breaks
    where the data does. The first and last points are always kept.
    """
    n = len(xs)
    if points <= 0 or n <= max(points, 2):
        return list(range(n))
    buckets = max(1, points // 2)
    x0, x1 = float(xs[0]), float(xs[-1])
    span = x1 - x0
    if not span > 0:
        # every point at one x: the extremes are all a chart can show
        return _extremes(ys, 0, n)
    scale = buckets / span
    keep: List[int] = [0]
    start = 0
    current = min(buckets - 1, int((float(xs[0]) - x0) * scale))
    for i in range(1, n):
        b = int((float(xs[i]) - x0) * scale)
        if b >= buckets:
            b = buckets - 1
        if b != current:
            keep.extend(_extremes(ys, start, i))
            start, current = i, b
    keep.extend(_extremes(ys, start, n))
    keep.append(n - 1)
    out: List[int] = []
    last = -1
    for i in keep:  # ascending already, drop repeats
        if i > last:
            out.append(i)
            last = i
    return out


def _extremes(ys: Sequence[Optional[float]], start: int, stop: int) -> List[int]:
    lo = hi = -1
    lo_v = hi_v = 0.0
    for i in range(start, stop):
        y = ys[i]
        if y is None:
            continue
        if lo < 0:
            lo = hi = i
            lo_v = hi_v = y
        elif y < lo_v:
            lo, lo_v = i, y
        elif y > hi_v:
            hi, hi_v = i, y
    if lo < 0:
        return [start]  # only gaps: keep one so the line breaks here
    return [lo] if lo == hi else sorted((lo, hi))
