"""Group bands: the database's per-range means against numpy (SQLite and PostgreSQL), and one band
function for epochline.plot and the viewer's groups page."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest

import epochline
from epochline.insight._bands import mean_band
from epochline.ui import data


def _log(uri, path, steps, values, params=None, **init):
    with epochline.init(path, store=uri, params=params or {}, **init) as run:
        for s, v in zip(steps, values):
            run.log({"score": v}, step=int(s))
    return run.id


def test_step_means_match_numpy(backend_uri):
    """Each run's mean per step range, on one grid for all runs (from the smallest first step to
    the largest last step), x the range's middle step; NaN and text are not numbers; a range or a
    run without a number is left out."""
    rng = np.random.default_rng(3)
    path = f"bands/{uuid.uuid4().hex}"
    a_steps = np.arange(0, 3_000)  # every step
    b_steps = np.arange(500, 2_600, 7)  # later, sparser, shorter
    c_steps = np.cumsum(rng.integers(1, 9, 400)) + 40  # irregular
    a = rng.normal(1.0, 0.5, len(a_steps))
    a[100:400] = np.nan  # no number in several ranges
    b = rng.normal(-2.0, 3.0, len(b_steps))
    c = rng.uniform(0, 10, len(c_steps))
    ids = [
        _log(backend_uri, path, a_steps, a.tolist()),
        _log(backend_uri, path, b_steps, b.tolist()),
        _log(backend_uri, path, c_steps, c.tolist()),
        _log(backend_uri, path, [0, 1], [math.nan, math.nan]),  # no number at all
    ]
    with epochline.init(path, store=backend_uri) as text_run:  # text is not a number
        text_run.log({"score": 5.0}, step=10)
        text_run.log({"score": "oops"}, step=11)
        text_run.log({"other": 1.0}, step=12)
    with epochline.open(backend_uri) as store:
        buckets = 45
        got = store.step_means(ids + [text_run.id], "score", buckets)
        lo, hi = 0, int(max(a_steps[-1], b_steps[-1], c_steps[-1]))
        span = hi - lo + 1
        edges = [lo + (i * span + buckets - 1) // buckets for i in range(buckets + 1)]
        middle = [(edges[i] + edges[i + 1] - 1) / 2 for i in range(buckets)]
        for rid, steps, values in zip(ids, (a_steps, b_steps, c_steps), (a, b, c)):
            which = (steps - lo) * buckets // span
            xs, ys = [], []
            for i in range(buckets):
                v = values[(which == i) & ~np.isnan(values)]
                if len(v):
                    xs.append(middle[i])
                    ys.append(v.mean())
            assert got[rid][0] == xs
            assert np.allclose(got[rid][1], ys, rtol=1e-12, atol=0)
        assert ids[3] not in got  # only NaN
        import epochline.store.reader as reader

        saved = reader._IN_BATCH
        try:
            reader._IN_BATCH = 2  # runs in batches: the grid stays the one of all runs
            assert store.step_means(ids + [text_run.id], "score", buckets) == got
        finally:
            reader._IN_BATCH = saved
        assert got[text_run.id] == ([middle[0]], [5.0])
        assert store.step_means(ids, "nope", buckets) == {}
        assert store.step_means([], "score", buckets) == {}
        # fewer steps than buckets: one step per range, the points themselves
        short = store.step_means([ids[3], text_run.id], "score", 1000)
        assert short == {text_run.id: ([10.0], [5.0])}


def test_viewer_bands_are_plots_bands(tmp_path):
    """The groups page and epochline.plot draw a group from the same function: for series short
    enough to come back point for point, the viewer's mean and band are the plotted ones (runs
    logging at different steps, interpolated inside their own range)."""
    pytest.importorskip("matplotlib")
    store_dir = tmp_path / "s"
    for lr in (0.1, 0.01):
        for seed in range(3):
            every = seed + 1  # seed 0 logs every step, seed 2 every third
            steps = list(range(seed, 60 - 5 * seed, every))
            _log(
                str(store_dir),
                "g/grid",
                steps,
                [1.0 / (s + 1) + lr + 0.05 * seed + 0.01 * math.sin(s) for s in steps],
                params={"lr": lr, "seed": seed},
                ignore_params=["seed"],
            )
    with epochline.open(store_dir) as store:
        agg = store.aggregate(path="g")
        bands = data.group_bands(store, agg, "score")
        fig = epochline.plot(agg, "score", store=store)
        means = [line for line in fig.axes[0].get_lines() if line.get_label().endswith("(n=3)")]
        fills = fig.axes[0].collections
        assert len(bands["groups"]) == len(means) == len(fills) == 2
        for band, mean, fill in zip(bands["groups"], means, fills):
            assert band["runs"] == 3 and mean.get_label() == f"{band['label']} (n=3)"
            assert np.array_equal(mean.get_xdata(), band["step"])
            assert np.allclose(mean.get_ydata(), band["mean"], rtol=1e-12)
            outline = fill.get_paths()[0].vertices[:, 1]
            assert math.isclose(outline.min(), min(band["lower"]), rel_tol=1e-12)
            assert math.isclose(outline.max(), max(band["upper"]), rel_tol=1e-12)
            assert max(band["n"]) == 3 and min(band["n"]) == 1  # seed 0 alone at its last steps
        # and the same numbers as mean_band of the runs' recorded points
        group = agg["groups"][0]
        lines = []
        for rid in group["runs"]:
            points = store.run(rid).metrics("score")
            lines.append(([s for _, s, _ in points], [v for _, _, v in points]))
        grid, mean, lower, upper, n = mean_band(lines)
        first = bands["groups"][0]
        assert (grid, n) == (first["step"], first["n"])
        assert np.allclose(mean, first["mean"]) and np.allclose(upper, first["upper"])
        assert np.allclose(lower, first["lower"])
        stacked = np.array([np.interp(grid, xs, ys, left=np.nan, right=np.nan) for xs, ys in lines])
        assert np.allclose(mean, np.nanmean(stacked, axis=0))


def test_mean_band_std_ci_and_edges():
    grid, mean, lower, upper, n = mean_band([([0, 1, 2], [1.0, 2.0, 3.0]), ([0, 2], [3.0, 5.0])])
    assert grid == [0.0, 1.0, 2.0] and n == [2, 2, 2]
    assert mean == [2.0, 3.0, 4.0]  # the second run interpolated at x=1: 4.0
    assert np.allclose(upper, [2 + math.sqrt(2), 3 + math.sqrt(2), 4 + math.sqrt(2)])
    assert np.allclose(lower, [2 - math.sqrt(2), 3 - math.sqrt(2), 4 - math.sqrt(2)])
    _, _, lo_ci, hi_ci, _ = mean_band([([0], [1.0]), ([0], [3.0]), ([0], [5.0])], band="ci")
    half = 4.302652729749464 * 2.0 / math.sqrt(3)  # t(0.975, df=2) x std / sqrt(n)
    assert math.isclose(hi_ci[0] - 3.0, half, rel_tol=1e-6)
    assert math.isclose(3.0 - lo_ci[0], half, rel_tol=1e-6)
    one = mean_band([([5, 6], [1.0, math.nan]), ([7], [math.inf])])
    assert one == ([5.0], [1.0], [1.0], [1.0], [1])  # non-finite points are not values; std 0 for one run
    assert mean_band([([1], [math.nan])]) == ([], [], [], [], [])
    with pytest.raises(ValueError, match="band must be"):
        mean_band([([0], [1.0])], band="iqr")
