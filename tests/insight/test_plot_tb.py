"""Plots opened back as PNG (size, not blank, the band drawn) and TensorBoard event files read back."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import epochline
from epochline.insight.plot import series, smooth_ema

pytest.importorskip("matplotlib")


def seeds(store_dir):
    for lr in (0.1, 0.01):
        for seed in range(3):
            with epochline.init(
                "p/grid", params={"lr": lr, "seed": seed}, ignore_params=["seed"], store=store_dir
            ) as run:
                for step in range(50):
                    run.log(
                        {"loss": 1 / (step + 1) + lr + seed * 0.05, "acc": 40 + step + seed * 3},
                        step=step,
                        epoch=step // 10 + 1,
                    )
                for epoch in range(1, 6):
                    run.end_epoch(epoch, {"val_accuracy": 0.1 * epoch + 0.05 * seed})
    return epochline.open(store_dir)


def pixels(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB")).astype(int)


def test_group_band_plot_png(tmp_path):
    store = seeds(tmp_path / "s")
    out = tmp_path / "band.png"
    fig = epochline.plot(store.aggregate(path="p"), "val_accuracy", x="epoch", store=store, out=out)
    img = pixels(out)
    assert img.shape[0] >= 300 and img.shape[1] >= 500
    assert (img != 255).any(axis=2).mean() > 0.02  # not blank
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr=0.1 (n=3)", "lr=0.01 (n=3)"]
    assert len(ax.collections) == 2  # one band per group
    assert ax.get_yaxis().get_major_formatter().__class__.__name__ == "PercentFormatter"
    # the band of epoch 1 is mean ± sample std of the three seeds (in percent)
    values = np.array([10.0, 15.0, 20.0])
    path = ax.collections[0].get_paths()[0].vertices
    assert path[:, 1].min() == pytest.approx(values.mean() - values.std(ddof=1))


def test_run_lines_svg_and_errors(tmp_path):
    store = seeds(tmp_path / "s")
    out = tmp_path / "lines.svg"
    fig = epochline.plot(store.runs()[:2], "loss", smooth=0.6, logy=True, out=out)
    assert out.read_text().lstrip().startswith("<?xml") and fig.axes[0].get_yscale() == "log"
    assert len(fig.axes[0].get_lines()) == 2
    with pytest.raises(KeyError, match="closest: loss"):
        epochline.plot(store.runs(), "los")
    with pytest.raises(ValueError, match="nothing to plot"):
        epochline.plot([], "loss")
    xs, _, percent = series(store.runs()[0], "acc")
    assert percent and len(xs) == 50  # accuracies recorded in percent get a percent axis
    assert smooth_ema([1.0, math.nan, 3.0], 0.5)[1] != smooth_ema([1.0, math.nan, 3.0], 0.5)[1]


def test_tensorboard_export_reads_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    image = np.zeros((8, 12, 3), dtype=np.uint8)
    image[:, :6, 0] = 255
    with epochline.init("tb/run", store=tmp_path / "s", params={"lr": 0.1}) as run:
        for step in range(10):
            run.log({"loss": 1.0 / (step + 1), "note": "text"}, step=step)
        run.log_image("img", image)
        run.log_histogram("w", [1.0, 2.0, 2.0, 3.0])
    with epochline.open(tmp_path / "s") as store:
        folder = store.run("tb/run").export_tensorboard(tmp_path / "tb")
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    scalars = acc.Scalars("loss")
    assert [s.step for s in scalars] == list(range(10)) and scalars[3].value == pytest.approx(0.25)
    assert "img" in acc.Tags()["images"] and "w" in acc.Tags()["histograms"]
    shown = acc.Images("img")[0]
    assert (shown.width, shown.height) == (12, 8)
    assert acc.Histograms("w")[0].histogram_value.num == 4
