import io
import logging
import math

import numpy as np
import pytest
from PIL import Image

import epochline
from epochline import RunFinishedError


def test_log_auto_steps_merge_and_read_back(store_dir, store):
    with epochline.init("cv/resnet/base", params={"lr": 0.1}, tags=["a"]) as run:
        run.log({"loss": 1.0})
        run.log(loss=0.5)
        run.log({"loss": 0.4, "acc": 0.5}, step=10)
        run.log({"acc": 0.6}, step=10)  # same step: merges, later wins
        run.log({"acc": 0.7}, step=10)
        run.log({"loss": 0.3})  # auto step continues after the largest seen
    view = store().run(run.id)
    assert [(s, v) for _, s, v in view.metrics("loss")] == [(0, 1.0), (1, 0.5), (10, 0.4), (11, 0.3)]
    assert [(s, v) for _, s, v in view.metrics("acc")] == [(10, 0.7)]
    assert view.status == "completed" and view.params == {"lr": 0.1} and view.tags == ["a"]
    assert view.path == "cv/resnet/base"


def test_nan_inf_bools_text_round_trip(store_dir, store):
    with epochline.init("x") as run:
        run.log(
            {
                "nan": float("nan"),
                "inf": math.inf,
                "ninf": -math.inf,
                "b": False,
                "t": "ok",
                "i": 2**40,
                "np": np.float32(0.25),
            },
            step=0,
        )
    view = store().run(run.id)
    got = {k: view.metrics(k)[0][2] for k in view.metric_keys()}
    assert math.isnan(got["nan"]) and got["inf"] == math.inf and got["ninf"] == -math.inf
    assert got["b"] is False and got["t"] == "ok" and got["i"] == 2**40 and got["np"] == 0.25


def test_odd_values_warn_once_and_training_goes_on(store_dir, store):
    run = epochline.init("x")
    with pytest.warns(RuntimeWarning, match="'vec' skipped") as record:
        run.log({"vec": np.zeros(3), "loss": 1.0})
        run.log({"vec": np.zeros(3), "loss": 2.0})
    assert len([w for w in record if "vec" in str(w.message)]) == 1
    run.finish()
    view = store().run(run.id)
    assert view.metric_keys() == ["loss"] and view.summary["epochline_skipped_values"] == 2


def test_wrong_use_gets_clear_errors(store_dir):
    run = epochline.init("x")
    with pytest.raises(TypeError, match="dict of metric values"):
        run.log([1, 2])
    with pytest.raises(TypeError, match="step must be an integer"):
        run.log({"a": 1}, step="ten")
    with pytest.raises(ValueError, match="mode must be"):
        run.set_primary_metric("acc", mode="best")
    with pytest.raises(ValueError, match="status must be one of"):
        run.finish("done")
    run.finish()
    run.finish()  # idempotent
    with pytest.raises(RunFinishedError, match=r"before run\.finish\(\), or start a new run"):
        run.log({"a": 1})
    with pytest.raises(ValueError, match=r"may not contain '\.\.'"):
        epochline.init("../../etc")
    with pytest.raises(ValueError, match="relative label"):
        epochline.init("x").log_artifact(__file__, name="../evil")


def test_context_manager_statuses(store_dir, store):
    with pytest.raises(ValueError), epochline.init("s", name="bad") as run_failed:
        raise ValueError("lr too high")
    with pytest.raises(KeyboardInterrupt), epochline.init("s", name="ctrl-c") as run_interrupted:
        raise KeyboardInterrupt
    views = {r.name: r for r in store().runs(path="s")}
    assert (views["bad"].status, views["bad"].reason) == ("failed", "ValueError: lr too high")
    assert views["ctrl-c"].status == "interrupted"
    assert run_failed.status == "failed" and run_interrupted.status == "interrupted"


def test_primary_metric_summary_and_fingerprint(store_dir, store):
    params = {"lr": 0.1, "num_workers": 4, "model": {"width": 8}}
    with epochline.init("g", params=params, ignore_params=["num_workers"]) as a:
        a.set_primary_metric("val_loss", mode="min")
        for step, value in enumerate([0.9, 0.5, 0.7, float("nan")]):
            a.log({"val_loss": value}, step=step)
        a.summary({"final": {"acc": 0.9}})
    with epochline.init("g", params={**params, "num_workers": 0}, ignore_params=["num_workers"]) as b:
        pass
    with epochline.init("g", params={**params, "lr": 0.2}) as c:
        pass
    assert a.fingerprint == b.fingerprint != c.fingerprint
    view = store().run(a.id)
    assert view.summary["best_val_loss"] == 0.5 and view.summary["best_val_loss_step"] == 1
    assert view.summary["final.acc"] == 0.9 and view.fingerprint == a.fingerprint
    assert [r.id for r in store().runs(fingerprint=a.fingerprint)] == [a.id, b.id]


def test_images_all_inputs_content_addressed(store_dir, store, tmp_path):
    torch = pytest.importorskip("torch")  # not in the py39 env (no torch wheel for 3.9 here)

    pil = Image.new("RGB", (4, 3), (255, 0, 0))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    path = tmp_path / "x.png"
    path.write_bytes(buf.getvalue())
    with epochline.init("img") as run:
        stored = [
            run.log_image("pil", pil, step=1, caption="red"),
            run.log_image("hw", np.random.rand(5, 6), step=1),
            run.log_image("chw", torch.rand(3, 5, 6)),
            run.log_image("hwc_u8", np.zeros((5, 6, 3), dtype=np.uint8)),
            run.log_image("bytes", buf.getvalue()),
            run.log_image("path", path),
        ]
        with pytest.warns(RuntimeWarning, match="not stored"):
            assert run.log_image("bad", np.zeros((2, 2, 7))) is None
    assert stored[0] == stored[4] == stored[5]  # same PNG bytes, one file
    images = {i.key: i for i in store().run(run.id).images()}
    assert set(images) == {"pil", "hw", "chw", "hwc_u8", "bytes", "path"}
    assert (images["hw"].width, images["hw"].height) == (6, 5)
    assert (images["chw"].width, images["chw"].height) == (6, 5)
    assert images["pil"].caption == "red" and images["pil"].path.read_bytes() == buf.getvalue()
    root = (store_dir / "media").resolve()
    assert all(root in i.path.parents for i in images.values())
    assert run.lost == 1


def test_artifacts_texts_tags_histogram_plots(store_dir, store, tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "a.pt").write_bytes(b"weights")
    (tmp_path / "ckpt" / "sub").mkdir()
    (tmp_path / "ckpt" / "sub" / "b.json").write_text("{}")
    logger = logging.getLogger("test-epochline-handler")
    logger.setLevel(logging.INFO)
    with epochline.init("art", name="first") as run:
        run.log_artifact(tmp_path / "ckpt")
        run.log_artifact(tmp_path / "ckpt" / "a.pt", name="best.pt")
        handler = run.logging_handler()
        logger.addHandler(handler)
        logger.info("started")
        logger.removeHandler(handler)
        run.log_text("plain line")
        run.comment("a note")
        run.tag("x", "y")
        run.untag("x")
        run.rename("second")
        run.log_histogram("w", np.arange(100.0), step=3, bins=10)
        run.log_histogram("h", hist={"min": 0, "max": 2, "num": 3, "bucket_limit": [1, 2], "bucket": [1, 2]})
        run.declare_plot("Loss", ["loss", "val_loss"], y_label="loss")
    view = store().run(run.id)
    arts = {a.name: a for a in view.artifacts()}
    assert set(arts) == {"ckpt/a.pt", "ckpt/sub/b.json", "best.pt"}
    assert arts["best.pt"].path == arts["ckpt/a.pt"].path and arts["best.pt"].path.read_bytes() == b"weights"
    assert [t.text for t in view.texts()] == ["started", "plain line"]
    assert view.texts()[0].level == "INFO" and view.comments() == ["a note"]
    assert view.tags == ["y"] and view.name == "second"
    ((_, step, hist),) = view.histograms("w")
    assert step == 3 and hist["num"] == 100 and sum(hist["bucket_counts"]) == 100
    assert view.histograms("h")[0][2]["bucket_counts"] == [1.0, 2.0]
    assert view.plots() == [
        {"name": "Loss", "kind": "line", "y_label": "loss", "metrics": ["loss", "val_loss"]}
    ]


def test_disabled_returns_noop(store_dir, monkeypatch):
    epochline.set_enabled(False)
    try:
        run = epochline.init("off")
        run.log({"a": 1})
        run.finish()
        assert isinstance(run, epochline.NoOpRun) and not run
    finally:
        epochline.set_enabled(True)
    monkeypatch.setenv("EPOCHLINE_DISABLED", "1")
    assert isinstance(epochline.init("off"), epochline.NoOpRun)
    assert not store_dir.exists()


def test_nonzero_rank_is_noop_unless_asked(store_dir, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert isinstance(epochline.init("ddp"), epochline.NoOpRun)
    run = epochline.init("ddp", all_ranks=True)
    assert isinstance(run, epochline.Run)
    run.finish()


def test_resume_continues_steps(store_dir, store):
    with epochline.init("r") as first:
        first.log({"loss": 1.0}, step=5)
    with epochline.init("r", run_id=first.id) as again:
        again.log({"loss": 0.5})
    assert again.step == 6
    view = store().run(first.id)
    assert [s for _, s, _ in view.metrics("loss")] == [5, 6] and view.status == "completed"
    assert len(store().runs()) == 1


def test_epoch_records_percent_and_warnings(store_dir, store):
    with epochline.init("e", total_epochs=2) as run:
        run.scales["top1"] = "percent"
        run.field_map["top1"] = "val_accuracy"
        record = run.end_epoch(1, {"loss": 0.5, "val_acc": 0.8, "lr": 0.1})
        assert record == {"train_loss": 0.5, "val_accuracy": 80.0, "lr": 0.1}
        assert run.end_epoch(2, {"top1": 91.0})["val_accuracy"] == 91.0
        with pytest.warns(RuntimeWarning, match="declared a fraction"):
            run.end_epoch(3, {"accuracy": 95.5})
        with pytest.raises(ValueError, match="1-indexed"):
            run.end_epoch(0, {})
    epochs = store().run(run.id).epochs()
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and epochs[0]["percent"] == ["val_accuracy"]
    assert epochs[0]["total_epochs"] == 2
