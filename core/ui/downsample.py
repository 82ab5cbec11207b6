"""Min/max-per-bucket downsampling of a series to about a chart's width in points, streaming.

A chart of 1,000 pixels cannot show more than 1,000 x positions; sending it a million points
costs seconds of transfer and drawing for no visible difference. Keeping the minimum and the
maximum of each pixel bucket (in x order) draws the same envelope as the full series: spikes
stay visible, unlike plain striding or averaging. The points arrive in chunks
(:meth:`~epochline.store.reader.RunView.iter_raw`), so memory is bounded by the bucket count,
whatever the length of the series.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = ["Envelope", "plottable"]

Point = Tuple[int, float, Optional[float]]  # (step, wall_time, chartable value or None)


def plottable(value: Any) -> Optional[float]:
    """A chartable float for a stored value: bools as 0/1; text, NaN and ±inf as None (a gap)."""
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None
    if t is int or t is bool:
        return float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value)
        return f if math.isfinite(f) else None
    return None


class Envelope:
    """Feed ``(step, wall_time, value)`` rows in step order; :meth:`points` gives what to draw.

    ``first``/``last`` are the series' first and last step (known before reading, from the
    store's per-series statistics) and cut the step range into ``points // 2`` equal buckets.
    Each bucket keeps its smallest and largest value in step order; a bucket holding only gaps
    keeps one gap, so the line breaks where the data does. ``points <= 0`` keeps every point.
    """

    def __init__(self, first: int, last: int, points: int):
        self.keep_all = points <= 0
        self.buckets = max(1, points // 2)
        self.first = first
        span = last - first
        self.scale = self.buckets / span if span > 0 else 0.0
        self._all: List[Point] = []
        # bucket -> [lo point, hi point, gap point]
        self._b: Dict[int, List[Optional[Point]]] = {}
        self._first: Optional[Point] = None
        self._last: Optional[Point] = None

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows ``(step, wall_time, stored value)`` (the stored form: NaN as None, bools as 0/1)."""
        keep_all, buckets, first, scale, table = self.keep_all, self.buckets, self.first, self.scale, self._b
        last: Optional[Point] = None
        for row in rows:  # the hot loop of a 1 M-point chart: plain locals, no calls for floats
            step, wall, raw = row[0], row[1], row[2]
            y = raw if type(raw) is float and raw - raw == 0.0 else plottable(raw)
            point = (step, wall, y)
            last = point
            if self._first is None:
                self._first = point
            if keep_all:
                self._all.append(point)
                continue
            b = int((step - first) * scale)
            if b >= buckets:
                b = buckets - 1
            slot = table.get(b)
            if slot is None:
                table[b] = [point, point, None] if y is not None else [None, None, point]
            elif y is not None:
                lo = slot[0]
                if lo is None:
                    slot[0] = slot[1] = point
                elif y < lo[2]:  # type: ignore[operator]
                    slot[0] = point
                elif y > slot[1][2]:  # type: ignore[index,operator]
                    slot[1] = point
        if last is not None:
            self._last = last

    def points(self) -> List[Point]:
        """The kept points in step order (first and last always among them)."""
        if self.keep_all:
            return self._all
        out: List[Point] = []
        for b in sorted(self._b):
            lo, hi, gap = self._b[b]
            if lo is None:
                out.append(gap)  # type: ignore[arg-type]
            elif lo is hi or hi is None:
                out.append(lo)
            else:
                out.extend((lo, hi) if lo[0] < hi[0] else (hi, lo))
        if self._first is not None and (not out or out[0][0] != self._first[0]):
            out.insert(0, self._first)
        if self._last is not None and out[-1][0] != self._last[0]:
            out.append(self._last)
        return out
