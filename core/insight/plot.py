"""``epochline.plot(...)``: one metric of several runs, or groups as mean ± std (or CI) bands.

matplotlib is imported only when a plot is made (``pip install 'epochline[insight]'``), with the
non-interactive Agg backend unless the caller chose one. Long series are thinned to at most
``max_points`` per line after smoothing, so a plot of a million-point run stays quick and small.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from ..epochs import canonical_field, is_accuracy
from ..store.reader import RunView, closest
from ._bands import mean_band

if TYPE_CHECKING:
    from ..store.reader import Store

X_AXES = ("step", "epoch", "wall_time")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "plots need matplotlib: pip install 'epochline[insight]' (or pip install matplotlib)",
            name="matplotlib",
        ) from exc
    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def smooth_ema(values: Sequence[float], weight: float) -> List[float]:
    """TensorBoard's debiased exponential moving average; NaN points are kept as NaN and skipped."""
    if not weight:
        return list(values)
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {weight}")
    out, last, n = [], 0.0, 0
    for v in values:
        if v != v or math.isinf(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        out.append(last / (1 - weight**n))
    return out


def series(run: RunView, metric: str, x: str = "step") -> Tuple[List[float], List[float], bool]:
    """(xs, ys, in_percent) of one run's metric against ``x``. Text values are left out.

    x="epoch" takes the run's epoch record field of that name (in percent when recorded so),
    else the last value of each epoch of points logged with ``epoch=``; x="wall_time" is seconds
    since the run started.
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    percent = False
    if x == "epoch":
        records = run.epochs()
        field = canonical_field(metric) or metric
        rows = [
            (
                r["epoch"],
                r["values"][metric if metric in r["values"] else field],
                metric in r["percent"] or field in r["percent"],
            )
            for r in records
            if metric in r["values"] or field in r["values"]
        ]
        if rows:
            percent = any(p for _, _, p in rows)
            pairs = [(e, v) for e, v, _ in rows]
        else:
            pairs = sorted(run.epoch_values(metric).items())
    else:
        pairs = []
        start = run.start_time or 0.0
        for chunk in run.iter_raw(metric):
            if x == "step":
                pairs.extend((s, v) for s, _, v in chunk)
            else:
                pairs.extend((t - start, v) for _, t, v in chunk)
    xs, ys = [], []
    for a, v in pairs:
        if isinstance(v, str):
            continue
        xs.append(float(a))
        ys.append(math.nan if v is None else float(v))
    if not percent and is_accuracy(canonical_field(metric) or metric):
        finite = [y for y in ys if math.isfinite(y)]
        percent = bool(finite) and max(finite) > 1.0 and max(finite) <= 100.0 and min(finite) >= 0.0
    return xs, ys, percent


def _thin(xs: List[float], ys: List[float], max_points: int) -> Tuple[List[float], List[float]]:
    if len(xs) <= max_points:
        return xs, ys
    stride = math.ceil(len(xs) / max_points)
    return xs[::stride] + [xs[-1]], ys[::stride] + [ys[-1]]


def _resolve(items: Any, store: Optional[Store]) -> List[Tuple[str, List[RunView]]]:
    """[(label, runs)]: a line per run, or one band per aggregate group."""
    if isinstance(items, dict) and "groups" in items:
        items = items["groups"]
    if isinstance(items, (str, RunView)) or (isinstance(items, dict) and "runs" in items):
        items = [items]
    out: List[Tuple[str, List[RunView]]] = []
    for item in items:
        if isinstance(item, dict) and "runs" in item:  # a group of store.aggregate()
            if store is None:
                raise ValueError("plotting aggregate groups needs store= (the store they came from)")
            out.append((str(item.get("label") or item.get("key")), [store.run(r) for r in item["runs"]]))
        elif isinstance(item, RunView):
            out.append((item.name, [item]))
        else:
            if store is None:
                from ..store.reader import open_store

                store = open_store()
            out.extend((run.name, [run]) for run in store.select(item))
    return out


def plot(
    runs: Any,
    metric: str,
    x: str = "step",
    smooth: float = 0.0,
    out: Union[str, os.PathLike, None] = None,
    *,
    store: Optional[Store] = None,
    band: str = "std",
    logy: bool = False,
    title: Optional[str] = None,
    max_points: int = 5000,
    ax: Any = None,
) -> Any:
    """Plot ``metric`` of runs (RunViews, refs or paths resolved in ``store``) as one line each, or
    of groups (``store.aggregate(...)`` or its ``groups``) as the mean line with a band of ±1 std
    (``band="std"``) or the 95 % t interval (``band="ci"``) across the group's runs.

    Returns the matplotlib Figure; with ``out`` also saves it (PNG, SVG or PDF by suffix). Colours
    are one per line, the legend names runs (or group labels), the y axis is logarithmic with
    ``logy`` and shows percent for accuracies recorded in percent. An unknown metric raises
    :class:`KeyError` naming the closest recorded ones.
    """
    if band not in ("std", "ci"):
        raise ValueError(f"band must be 'std' or 'ci', got {band!r}")
    plt = _pyplot()
    groups = _resolve(runs, store)
    if not groups or not any(members for _, members in groups):
        raise ValueError("nothing to plot: no runs selected")
    _check_metric(groups, metric, x)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    else:
        fig = ax.figure
    any_percent = False
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    is_group = (
        isinstance(runs, dict)
        or any(len(m) > 1 for _, m in groups)
        or (isinstance(runs, (list, tuple)) and any(isinstance(i, dict) for i in runs))
    )
    for index, (label, members) in enumerate(groups):
        color = colors[index % len(colors)]
        lines = []
        for run in members:
            xs, ys, percent = series(run, metric, x)
            any_percent = any_percent or percent
            if xs:
                lines.append((xs, smooth_ema(ys, smooth)))
        if not lines:
            continue
        if not is_group:
            xs, ys = _thin(*lines[0], max_points)
            ax.plot(xs, ys, color=color, label=label, linewidth=1.2)
            continue
        grid, mean, lo, hi, _ = mean_band(lines, band)
        grid, mean = _thin(grid, mean, max_points)
        lo = _thin(list(range(len(lo))), lo, max_points)[1]
        hi = _thin(list(range(len(hi))), hi, max_points)[1]
        ax.plot(grid, mean, color=color, label=f"{label} (n={len(lines)})", linewidth=1.4)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.2, linewidth=0)
    _decorate(ax, metric, x, any_percent, logy, title if title is not None or len(groups) < 2 else metric)
    fig.tight_layout()
    if out is not None:
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target)
        plt.close(fig)
    return fig


def _check_metric(groups: List[Tuple[str, List[RunView]]], metric: str, x: str) -> None:
    known: set = set()
    for _, members in groups:
        for run in members:
            known.update(run.metric_keys())
            if x == "epoch":
                known.update(k for r in run.epochs() for k in r["values"])
    if metric not in known:
        raise KeyError(closest(metric, known, "metric"))


def _decorate(ax: Any, metric: str, x: str, percent: bool, logy: bool, title: Optional[str]) -> None:
    ax.set_xlabel({"step": "step", "epoch": "epoch", "wall_time": "seconds since start"}[x])
    ax.set_ylabel(metric + (" (%)" if percent else ""))
    if logy:
        ax.set_yscale("log")
    if percent:
        from matplotlib.ticker import PercentFormatter

        ax.yaxis.set_major_formatter(PercentFormatter(xmax=100))
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if any(line.get_label() and not line.get_label().startswith("_") for line in ax.get_lines()):
        ax.legend(loc="best", fontsize="small")


__all__ = ["plot", "series", "smooth_ema", "X_AXES"]
