"""The one band across runs: mean ± std (or the 95 % t interval) of several runs' curves, per x.

``epochline.plot`` draws groups with it (from each run's points) and the viewer's groups page
(from each run's means per step range, :meth:`~epochline.store.reader.Store.step_means`), so a
group looks the same in a saved figure and in the browser. Private to the package: users get it
through those two.
"""

from __future__ import annotations

import warnings
from typing import List, Sequence, Tuple

Curve = Tuple[Sequence[float], Sequence[float]]


def mean_band(
    lines: Sequence[Curve], band: str = "std"
) -> Tuple[List[float], List[float], List[float], List[float], List[int]]:
    """``(grid, mean, lower, upper, n)`` over ``lines`` (each run's ``(xs, ys)``, xs ascending).

    The grid is every x at which some run has a finite value. Each run counts at a grid x inside
    its own finite x range, linearly interpolated between its points, and not outside it (a run
    that stopped early does not drag the mean). ``n`` is the number of runs at each x; the band
    is ± the sample standard deviation (``band="std"``; 0 for one run) or ± the half-width of
    the two-sided 95 % Student-t interval of the mean (``band="ci"``).
    """
    import numpy as np

    from ._stats import t_ppf

    if band not in ("std", "ci"):
        raise ValueError(f"band must be 'std' or 'ci', got {band!r}")
    curves = []
    for xs, ys in lines:
        xa, ya = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        ok = np.isfinite(ya) & np.isfinite(xa)
        if ok.any():
            curves.append((xa[ok], ya[ok]))
    if not curves:
        return [], [], [], [], []
    grid = np.unique(np.concatenate([xa for xa, _ in curves]))
    stack = np.full((len(curves), len(grid)), np.nan)
    for i, (xa, ya) in enumerate(curves):
        inside = (grid >= xa[0]) & (grid <= xa[-1])
        stack[i, inside] = np.interp(grid[inside], xa, ya)
    count = np.sum(np.isfinite(stack), axis=0)  # >= 1: every grid x is some run's point
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stack, axis=0)
        std = np.where(count > 1, np.nanstd(stack, axis=0, ddof=1), 0.0)
    if band == "ci":
        t = np.array([t_ppf(0.975, n - 1) if n > 1 else 0.0 for n in count])
        half = t * std / np.sqrt(count)
    else:
        half = std
    return grid.tolist(), mean.tolist(), (mean - half).tolist(), (mean + half).tolist(), count.tolist()
