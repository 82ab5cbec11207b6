"""compare / aggregate / streaming reads / DataFrames on real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import math
import sys
import tracemalloc

import numpy as np
import pytest
from scipy import stats

import epochline
from epochline.insight._stats import describe, t_ppf

LOSSES = {0.1: [0.52, 0.48, 0.55], 0.01: [0.31, 0.35, 0.29]}


def make_seeds(uri, prefix, crash_one=True):
    """Two configs (lr) x three seeds; loss decreases to the given best, then rises a little."""
    for lr, bests in LOSSES.items():
        for seed, best in enumerate(bests):
            with epochline.init(
                f"{prefix}/grid", params={"lr": lr, "seed": seed}, ignore_params=["seed"], store=uri
            ) as run:
                run.set_primary_metric("val_accuracy", mode="max")
                for step in range(20):
                    loss = best + abs(step - 15) * 0.01
                    run.log(
                        {"loss": loss, "val_accuracy": 1 - loss, "only_nan": math.nan},
                        step=step,
                        epoch=step // 5 + 1,
                    )
                for epoch in range(1, 5):
                    run.end_epoch(epoch, {"val_loss": best + (4 - epoch) * 0.01, "val_accuracy": 0.5})
    if crash_one:
        with (
            pytest.raises(RuntimeError),
            epochline.init(
                f"{prefix}/grid", params={"lr": 0.1, "seed": 9}, ignore_params=["seed"], store=uri
            ) as run,
        ):
            run.log({"loss": 100.0}, step=0)
            raise RuntimeError("boom")


def test_aggregate_matches_numpy_and_scipy(backend_uri, prefix):
    make_seeds(backend_uri, prefix)
    with epochline.open(backend_uri) as store:
        result = store.aggregate(path=prefix)
        json.dumps(result, allow_nan=False)
        assert len(result["groups"]) == 2 and result["status"] == "completed"
        by_label = {g["label"]: g for g in result["groups"]}
        assert set(by_label) == {"lr=0.1", "lr=0.01"}
        for lr, bests in LOSSES.items():
            group = by_label[f"lr={lr}"]
            assert len(group["runs"]) == 3
            best = group["metrics"]["loss"]["best"]
            arr = np.array(bests)
            assert group["metrics"]["loss"]["mode"] == "min"
            assert best["n"] == 3 and best["mean"] == pytest.approx(arr.mean())
            assert best["std"] == pytest.approx(arr.std(ddof=1))
            assert best["sem"] == pytest.approx(stats.sem(arr))
            lo, hi = stats.t.interval(0.95, 2, loc=arr.mean(), scale=stats.sem(arr))
            assert best["ci"] == pytest.approx([lo, hi])
            assert (best["min"], best["max"]) == (pytest.approx(arr.min()), pytest.approx(arr.max()))
            final = group["metrics"]["loss"]["final"]
            assert final["mean"] == pytest.approx((arr + 0.04).mean())
            # primary metric val_accuracy is max-mode: best = 1 - best loss
            assert group["metrics"]["val_accuracy"]["best"]["mean"] == pytest.approx((1 - arr).mean())
            assert group["metrics"]["only_nan"]["best"] == {
                "n": 0,
                "mean": None,
                "std": None,
                "sem": None,
                "ci": None,
                "min": None,
                "max": None,
                "dropped": 3,
            }
        crashed = by_label["lr=0.1"]["excluded"]
        assert len(crashed) == 1 and crashed[0]["status"] == "failed" and "boom" in crashed[0]["reason"]
        # status=None counts the failed run too; by=[...] groups by the named params
        assert len(store.aggregate(path=prefix, status=None)["groups"][0]["runs"]) == 4
        named = store.aggregate(path=prefix, by=["lr"], metrics=["loss"])
        assert named["metrics"] == ["loss"] and [g["key"] for g in named["groups"]] == [
            {"lr": 0.1},
            {"lr": 0.01},
        ]
        with pytest.raises(KeyError, match="closest: loss"):
            store.aggregate(path=prefix, metrics=["los"])
        empty = store.aggregate(path=f"{prefix}/nothing")
        assert empty["groups"] == [] and empty["metrics"] == []


def test_compare(backend_uri, prefix):
    make_seeds(backend_uri, prefix, crash_one=False)
    with epochline.open(backend_uri) as store:
        runs = store.runs(path=prefix)
        result = store.compare([runs[0].id, runs[3].name])
        json.dumps(result, allow_nan=False)
        assert result["params"] == {"differing": ["lr"], "same": {"seed": 0}}
        first, second = result["runs"]
        assert first["metrics"]["loss"]["best"] == pytest.approx(0.52)
        assert first["metrics"]["loss"]["final"] == pytest.approx(0.56)
        assert first["metrics"]["val_accuracy"]["mode"] == "max"
        assert first["metrics"]["only_nan"] == {
            "best": None,
            "mode": "max",
            "final": "NaN",
            "final_step": 19,
            "count": 20,
        }
        assert second["metrics"]["loss"]["best"] == pytest.approx(0.31)
        assert [e["epoch"] for e in result["epochs"]] == [1, 2, 3, 4]
        assert result["epochs"][0]["values"][1]["val_loss"] == pytest.approx(0.34)
        with pytest.raises(KeyError, match="closest: val_accuracy"):
            store.compare([runs[0].id], metrics=["val_acuracy"])
        with pytest.raises(KeyError, match=r"no run .gird.*(closest: |runs, at )"):
            store.compare(["gird"])


def test_streaming_reads_are_bounded(backend_uri, prefix):
    with epochline.init(f"{prefix}/long", store=backend_uri) as run:
        for step in range(60_000):
            run.log({"x": float(step), "n": math.nan if step % 2 else step}, step=step)
    with epochline.open(backend_uri) as store:
        view = store.run(f"{prefix}/long")
        chunks = [len(c) for c in view.iter_metrics("x", chunk_size=7_000)]
        assert sum(chunks) == 60_000 and max(chunks) == 7_000
        window = view.metrics("x", start=100, stop=110)
        assert [s for _, s, _ in window] == list(range(100, 110)) and window[0][2] == 100.0
        assert view.metric_count("x") == 60_000 and view.last("x") == 59_999.0
        stats_ = view.metric_stats()
        assert stats_["n"]["max"] == 59_998 and math.isnan(stats_["n"]["last"])
        assert list(view.iter_metrics("missing")) == [] and view.metrics("missing") == []
        tracemalloc.start()
        total = 0.0
        for chunk in view.iter_metrics("x", chunk_size=5_000):
            total += sum(v for _, _, v in chunk)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert total == sum(range(60_000))
        assert peak < 6_000_000, peak  # the whole series as tuples would take ~8 MB


def test_history_and_runs_frame(backend_uri, prefix):
    pd = pytest.importorskip("pandas")
    make_seeds(backend_uri, prefix, crash_one=False)
    with epochline.open(backend_uri) as store:
        view = store.runs(path=prefix)[0]
        steps = view.history()
        assert list(steps.columns) == ["loss", "only_nan", "val_accuracy"] and steps.index.name == "step"
        assert len(steps) == 20 and steps["loss"].iloc[15] == pytest.approx(0.52)
        assert steps["only_nan"].isna().all() and steps.dtypes["loss"] == np.float64
        epochs = view.history(by="epoch")
        assert epochs.index.name == "epoch" and list(epochs.index) == [1, 2, 3, 4]
        assert epochs["val_loss"].iloc[0] == pytest.approx(0.55) and epochs["val_accuracy"].iloc[0] == 50.0
        assert epochs["loss"].iloc[0] == pytest.approx(0.52 + 11 * 0.01)  # last step of epoch 1
        with pytest.raises(KeyError, match="closest: loss"):
            view.history(keys=["loss2"])
        frame = store.runs_frame(path=prefix)
        assert isinstance(frame, pd.DataFrame) and len(frame) == 6
        assert {"params.lr", "params.seed", "summary.best_val_accuracy"} <= set(frame.columns)
        assert list(frame.columns).index("params.seed") < list(frame.columns).index("metrics.loss")
        first = frame.set_index("id").loc[view.id]
        assert first["metrics.loss"] == pytest.approx(0.52 + 0.04) and np.isnan(first["metrics.only_nan"])
        assert frame["fingerprint"].nunique() == 2 and (frame["status"] == "completed").all()


def test_history_of_run_without_metrics(tmp_path):
    pytest.importorskip("pandas")
    with epochline.init("empty", store=tmp_path):
        pass
    with epochline.open(tmp_path) as store:
        view = store.run("empty")
        assert view.history().empty and view.history(by="epoch").empty
        assert store.compare([view.id])["epochs"] == []


@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 29, 200])
def test_t_quantile_matches_scipy(df):
    assert t_ppf(0.975, df) == pytest.approx(stats.t.ppf(0.975, df), rel=1e-9)
    assert t_ppf(0.05, df) == pytest.approx(stats.t.ppf(0.05, df), rel=1e-9)


def test_describe_edge_cases():
    assert describe([2.0])["std"] is None and describe([2.0])["mean"] == 2.0
    assert describe([1, math.inf])["mean"] == math.inf and describe([1, math.inf])["std"] is None
    assert describe([True, "x", None])["n"] == 0


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("pandas", lambda store, view: view.history()),
        ("pandas", lambda store, view: store.runs_frame()),
        ("matplotlib", lambda store, view: epochline.plot([view], "x")),
        ("tensorboardX", None),
    ],
)
def test_a_missing_optional_package_names_the_extra(tmp_path, monkeypatch, module, call):
    with epochline.init("opt/run", store=tmp_path) as run:
        run.log({"x": 1.0}, step=0)
    with epochline.open(tmp_path) as store:
        view = store.run("opt/run")
        monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
        if call is None:
            monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
            call = lambda store, view: view.export_tensorboard(tmp_path / "tb")  # noqa: E731
        with pytest.raises(ModuleNotFoundError, match=r"pip install 'epochline\[(insight|tensorboard)\]'"):
            call(store, view)
