"""The Lightning adapter with a real Trainer on CPU (scikit-learn's bundled digits, tiny MLP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from argparse import Namespace

import pytest

try:
    import lightning.pytorch as L
except ImportError:  # only the old package name is installed (tox env pl-*)
    L = pytest.importorskip("pytorch_lightning")

import epochline  # noqa: E402
from epochline.integrations.lightning import KoguLogger  # noqa: E402
from linecheck import protocol_lines  # noqa: E402

from torch.nn import functional as F  # noqa: E402

from .conftest import finished_output  # noqa: E402
from .lightning_models import DigitsData, DigitsMLP, pl_classes, trainer_kwargs  # noqa: E402


def seed(value: int = 0) -> None:
    try:
        L.seed_everything(value, verbose=False)
    except TypeError:  # Lightning < 2.4 has no verbose=
        L.seed_everything(value)


def fit(logger, model=None, data=None, **overrides):
    seed(0)
    model = model if model is not None else DigitsMLP()
    trainer = L.Trainer(logger=logger, **trainer_kwargs(**overrides))
    trainer.fit(model, data if data is not None else DigitsData())
    return trainer, model


def progress_lines(out: str) -> list:
    """Every PROGRESS object printed, each line checked by the shared checker (tests/linecheck.py)."""
    return protocol_lines(out)[1]


def kogu_lines(out: str) -> list:
    """Every Kogu object printed, each line checked by the shared checker (tests/linecheck.py)."""
    return protocol_lines(out)[0]


class EpochsSeen(L.Callback):
    """Records how many epoch records the run had when each training epoch started."""

    def __init__(self):
        self.seen = []

    def on_train_epoch_start(self, trainer, pl_module):
        self.seen.append(trainer.logger.experiment.epochs_done)


def test_fit_records_params_epochs_images_and_lines(store_dir, store, capfd):
    logger = KoguLogger(path="digits/mlp", tags=["baseline"], params={"note": "first"})
    seen = EpochsSeen()
    fit(
        logger,
        model=DigitsMLP(config={"optimizer": {"name": "adam", "betas": [0.9, 0.999]}}),
        callbacks=[seen],
    )
    out = finished_output(capfd)

    runs = store().runs()
    assert [r.id for r in runs] == [logger.version]
    run = runs[0]
    assert (run.status, run.reason, run.path, run.tags) == ("completed", None, "digits/mlp", ["baseline"])
    params = run.params
    assert params["lr"] == 0.01 and params["hidden"] == 32 and params["note"] == "first"
    assert params["batch_size"] == 64  # the datamodule's hparams
    assert params["config.optimizer.name"] == "adam" and params["config.optimizer.betas"] == [0.9, 0.999]

    # one record per epoch, closed during training (before the next epoch started)
    assert seen.seen == [0, 1, 2]
    epochs = run.epochs()
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for record in epochs:
        values = record["values"]
        assert record["total_epochs"] == 3
        assert set(values) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
        assert 10.0 < values["val_accuracy"] <= 100.0 and 10.0 < values["train_accuracy"] <= 100.0
        assert set(record["percent"]) == {"train_accuracy", "val_accuracy"}
    assert epochs[-1]["values"]["val_accuracy"] > 80.0
    assert epochs[-1]["values"]["val_loss"] < epochs[0]["values"]["val_loss"]

    # step series keep Lightning's names, steps and (1-indexed) epochs
    assert {"train_loss_step", "train_loss_epoch", "train_acc", "val_loss", "val_acc"} <= set(
        run.metric_keys()
    )
    steps = [s for _, s, _ in run.metrics("train_loss_step")]
    assert steps == sorted(set(steps)) and steps[0] == 4  # log_every_n_steps=5: steps 4, 9, ...
    assert [r["epoch"] for r in run.metric_rows("val_acc")] == [1, 2, 3]
    assert all(0.0 < v <= 1.0 for _, _, v in run.metrics("val_acc"))  # stored as logged

    images = run.images("weights")
    assert [i.caption for i in images] == ["epoch 1", "epoch 2", "epoch 3"]
    assert [i.step for i in images] == sorted(i.step for i in images) and images[0].step > 0

    lines = progress_lines(out)
    assert [(p["epoch"], p["status"]) for p in lines] == [
        (1, "training"),
        (2, "training"),
        (3, "training"),
        (3, "completed"),
    ]
    assert all(p["total_epochs"] == 3 for p in lines)
    assert lines[2]["val_accuracy"] == pytest.approx(epochs[-1]["values"]["val_accuracy"])
    assert lines[-1]["test_accuracy"] > 80.0  # the consumer reads the final accuracy from here

    kogu = kogu_lines(out)
    metric_objects = [o["metric"] for o in kogu if "metric" in o]
    assert [m["iteration"] for m in metric_objects if m["iteration"] > 0] == [1, 2, 3]
    assert any(o.get("parameters", {}).get("lr") == 0.01 for o in kogu)
    assert {"tag": "baseline"} in kogu
    assert sum("upload" in o for o in kogu) == 3
    assert not any("fail" in o for o in kogu)


def test_test_and_predict_after_fit_keep_the_same_run(store_dir, store, capfd):
    logger = KoguLogger(path="digits/mlp")
    trainer, model = fit(logger, max_epochs=2)
    capfd.readouterr()
    trainer.test(model, datamodule=DigitsData(), verbose=False)
    out_test = finished_output(capfd)
    trainer.predict(model, datamodule=DigitsData())
    out_predict = finished_output(capfd)

    (run,) = store().runs()
    assert run.status == "completed"
    assert [e["epoch"] for e in run.epochs()] == [1, 2]
    last = run.epochs()[-1]["values"]
    assert last["test_accuracy"] > 50.0 and "train_loss" in last and "val_accuracy" in last
    assert [r["epoch"] for r in run.metric_rows("test_acc")] == [2]
    lines = progress_lines(out_test)
    assert [(p["epoch"], p["status"]) for p in lines] == [(2, "training"), (2, "completed")]
    assert lines[-1]["test_accuracy"] == pytest.approx(last["test_accuracy"])
    assert progress_lines(out_predict) == [] and kogu_lines(out_predict) == []  # nothing re-opened


def test_exception_in_training_step_fails_the_run(store_dir, store, capfd):
    logger = KoguLogger(path="digits/fail")
    with pytest.raises(ValueError, match="boom"):
        fit(logger, model=DigitsMLP(fail_at_step=30))
    out = finished_output(capfd)
    (run,) = store().runs()
    assert (run.status, run.reason) == ("failed", "ValueError: boom at step 30")
    assert [e["epoch"] for e in run.epochs()] == [1]
    lines = progress_lines(out)
    assert lines[-1]["status"] == "failed" and all(p["status"] != "completed" for p in lines)
    assert {"fail": "failed: ValueError: boom at step 30"} in kogu_lines(out)


def test_keyboard_interrupt_is_interrupted_not_failed(store_dir, store, capfd):
    logger = KoguLogger(path="digits/ctrl-c")
    handler = signal.getsignal(signal.SIGINT)
    try:
        # Lightning >= 2.4 finalizes its loggers, then exits with SystemExit(1); older versions
        # finalize them and return from fit
        try:
            fit(logger, model=DigitsMLP(interrupt_at_step=30))
        except (SystemExit, KeyboardInterrupt):
            pass
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl-C
    (run,) = store().runs()
    assert run.status == "interrupted" and "KeyboardInterrupt" in run.reason
    assert progress_lines(finished_output(capfd))[-1]["status"] == "interrupted"


def test_resume_from_checkpoint_continues_the_run(store_dir, store, tmp_path):
    ckpt = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = KoguLogger(path="digits/resume", log_model="all")
    fit(first, max_epochs=2, enable_checkpointing=True, callbacks=[ckpt])
    (run,) = store().runs()
    steps_before = [s for _, s, _ in run.metrics("train_loss_step")]

    again = KoguLogger(path="digits/resume", run_id=first.version)
    ckpt2 = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt2")
    seed(0)
    trainer = L.Trainer(
        logger=again, callbacks=[ckpt2], **trainer_kwargs(max_epochs=4, enable_checkpointing=True)
    )
    trainer.fit(DigitsMLP(), DigitsData(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))

    (run,) = store().runs()
    assert run.id == first.version and run.status == "completed"
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3, 4]
    assert all(e["total_epochs"] == 4 for e in run.epochs()[2:])
    steps = [s for _, s, _ in run.metrics("train_loss_step")]
    assert steps[: len(steps_before)] == steps_before and steps == sorted(set(steps))
    assert len(steps) == 2 * len(steps_before)  # nothing lost, nothing twice
    assert [r["epoch"] for r in run.metric_rows("val_acc")] == [1, 2, 3, 4]
    names = [a.name for a in run.artifacts()]
    assert names and all(n.startswith("checkpoints/") and n.endswith(".ckpt") for n in names)
    assert run.summary["best_checkpoint"].endswith(".ckpt")


def test_failing_store_or_sink_never_stops_the_fit(store_dir, store, tmp_path, capfd):
    not_a_dir = tmp_path / "store-is-a-file"
    not_a_dir.write_text("x")

    class BrokenSink:
        @epochline.hookimpl
        def epochline_events(self, run, events):
            raise OSError("disk full")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer, _ = fit(KoguLogger(path="digits/nostore", store=str(not_a_dir)), max_epochs=2)
        assert trainer.callback_metrics["val_acc"] > 0.5
        epochline.register(BrokenSink(), name="test-broken-sink")
        try:
            trainer, _ = fit(KoguLogger(path="digits/broken-sink"), max_epochs=2)
        finally:
            epochline.unregister(name="test-broken-sink")
    assert trainer.callback_metrics["val_acc"] > 0.5
    (run,) = store().runs()  # the store sink kept working beside the broken one
    assert run.status == "completed" and [e["epoch"] for e in run.epochs()] == [1, 2]


@pytest.mark.slow
def test_ddp_spawn_on_cpu_records_one_run_and_one_set_of_lines(store_dir, store, capfd):
    logger = KoguLogger(path="digits/ddp")
    fit(logger, max_epochs=2, strategy="ddp_spawn", devices=2)
    out = finished_output(capfd)
    runs = store().runs()
    assert len(runs) == 1 and runs[0].id == logger.version and runs[0].status == "completed"
    assert [e["epoch"] for e in runs[0].epochs()] == [1, 2]
    assert [(p["epoch"], p["status"]) for p in progress_lines(out)] == [
        (1, "training"),
        (2, "training"),
        (2, "completed"),
    ]
    kogu = kogu_lines(out)
    assert sum("parameters" in o for o in kogu) == 1
    assert sum("upload" in o for o in kogu) == 2


def test_other_ranks_never_create_runs(store_dir, store, capfd, monkeypatch):
    from lightning_utilities.core.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = KoguLogger(path="digits/rank1")
    assert isinstance(logger.experiment, epochline.NoOpRun)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"val_acc": 0.5, "epoch": 0}, step=1)
    logger.log_image("x", [[0, 255], [255, 0]])
    logger.finalize("success")
    assert not store_dir.exists() and finished_output(capfd) == ""  # no run, not even a store


def test_hparams_and_metrics_without_a_trainer(store_dir, store, capfd):
    """Used on its own (or with autolog off): Namespace/dict hparams, callables never called,
    epochs closed when the next epoch starts and at finalize, test values told apart by name."""

    class Exploding:
        def __call__(self):
            raise AssertionError("called")

    logger = KoguLogger(path="digits/manual", total_epochs=2)
    logger.log_hyperparams(Namespace(lr=0.1, opt=Namespace(name="adam", betas=[0.9, 0.99]), fn=Exploding()))
    logger.log_hyperparams({"model": {"depth": 3}})
    logger.log_metrics({"train_loss_step": 2.0, "epoch": 0}, step=0)
    logger.log_metrics({"val_acc": 0.5, "val_loss": 1.5, "epoch": 0}, step=1)
    logger.log_metrics({"loss_epoch": 1.0, "acc_epoch": 0.6, "epoch": 0}, step=1)
    assert logger.experiment.epochs_done == 0  # no trainer: the epoch may still get values
    logger.log_metrics({"train_loss_step": 0.5, "epoch": 1}, step=2)
    assert logger.experiment.epochs_done == 1  # ... until the next one starts
    logger.log_metrics({"val_acc": 0.75, "epoch": 1}, step=3)
    logger.log_metrics({"test_acc": 0.7, "epoch": 2}, step=3)
    logger.finalize("success")
    run = store().run(logger.version)
    assert run.params["lr"] == 0.1 and run.params["opt.name"] == "adam" and run.params["model.depth"] == 3
    assert run.params["opt.betas"] == [0.9, 0.99] and "Exploding" in run.params["fn"]
    records = {e["epoch"]: e["values"] for e in run.epochs()}
    assert records[1] == {"val_accuracy": 50.0, "val_loss": 1.5, "train_loss": 1.0, "train_accuracy": 60.0}
    assert records[2] == {"val_accuracy": 75.0, "test_accuracy": 70.0}
    assert [(p["epoch"], p["total_epochs"]) for p in progress_lines(finished_output(capfd))] == [
        (1, 2),
        (2, 2),
        (2, 2),
    ]


def test_pytorch_lightning_gets_its_own_logger_class(store_dir, store):
    pl = pytest.importorskip("pytorch_lightning")
    from epochline.integrations import lightning as integration

    cls = integration.PLKoguLogger
    assert issubclass(cls, pl.loggers.Logger) and issubclass(KoguLogger, L.loggers.Logger)
    if L is pl:  # only pytorch_lightning installed: one class serves both names
        assert cls is KoguLogger
    else:
        assert not issubclass(cls, L.loggers.Logger)
    data_cls, model_cls = pl_classes()
    logger = cls(path="digits/pl")
    seed(0)
    trainer = pl.Trainer(
        logger=[logger, pl.loggers.CSVLogger(store_dir.parent / "csv")], **trainer_kwargs(max_epochs=2)
    )
    trainer.fit(model_cls(), data_cls())
    (run,) = store().runs()
    assert run.status == "completed" and [e["epoch"] for e in run.epochs()] == [1, 2]
    assert run.epochs()[-1]["values"]["val_accuracy"] > 50.0


def test_importing_epochline_imports_no_framework():
    code = (
        "import sys, epochline, epochline.integrations; "
        "assert not {'torch', 'lightning', 'pytorch_lightning'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- issue 13: what Lightning's own tests and real trainings found -------------------------------
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"tag": ["x"]}, TypeError, ["'tag'", "did you mean 'tags'"]),
        ({"accuracy_scale": "percnt"}, ValueError, ["'fraction' or 'percent'"]),
        ({"path": 5}, TypeError, ["path must be a string"]),
        ({"run_id": "bad id/"}, ValueError, ["letters, digits"]),
        ({"emit": "kogu,progres"}, ValueError, ["'progres'", "did you mean 'progress'"]),
        ({"log_model": "bestt"}, ValueError, ["'best' or 'all'"]),
        ({"prefix": 3}, TypeError, ["prefix must be a string"]),
        ({"total_epochs": 0}, ValueError, ["positive integer"]),
        ({"scales": {"top1": "pct"}}, ValueError, ["'fraction' or 'percent'"]),
    ],
)
def test_constructor_rejects_bad_arguments_when_built(store_dir, kwargs, error, words):
    with pytest.raises(error) as info:
        KoguLogger(**kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_prefix_names_the_series_and_run_records_into_a_given_run(store_dir, store, capfd):
    with epochline.init("digits/own", emit="progress") as run:
        run.log({"my_value": 1.0}, step=0)
        logger = KoguLogger(run=run, prefix="exp")
        fit(logger, max_epochs=2, limit_train_batches=5)
        assert not run.finished  # the user's run: the user ends it
        assert logger.version == run.id and logger.name == "digits/own"
    with pytest.raises(TypeError, match="belong"):
        KoguLogger(run=run, path="elsewhere")
    (stored,) = store().runs()
    assert stored.status == "completed" and "my_value" in stored.metric_keys()
    assert {"exp-val_acc", "exp-train_loss_step"} <= set(stored.metric_keys())
    assert [e["epoch"] for e in stored.epochs()] == [1, 2]
    assert "val_accuracy" in stored.epochs()[0]["values"]  # records keep Lightning's names


def test_learning_rate_monitor_one_line_per_epoch_and_lr_on_its_epoch(store_dir, store, capfd):
    lr = L.callbacks.LearningRateMonitor(logging_interval="epoch")
    fit(KoguLogger(path="digits/lr"), max_epochs=3, limit_train_batches=5, callbacks=[lr])
    lines = progress_lines(finished_output(capfd))
    assert [(p["epoch"], p["status"]) for p in lines] == [
        (1, "training"),
        (2, "training"),
        (3, "training"),
        (3, "completed"),
    ]
    (run,) = store().runs()
    assert [r["epoch"] for r in run.metric_rows("lr-Adam")] == [1, 2, 3]
    assert all(e["values"]["lr-Adam"] == pytest.approx(0.01) for e in run.epochs())


class StepOnly(DigitsMLP):
    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        self.log("batch_mean", loss, on_step=True, on_epoch=True)
        return loss


def test_step_only_train_values_stay_out_of_the_epoch_record(store_dir, store):
    fit(
        KoguLogger(path="digits/steps"),
        model=StepOnly(images=False),
        max_epochs=2,
        limit_train_batches=6,
        log_every_n_steps=1,
    )
    (run,) = store().runs()
    for record in run.epochs():
        assert "train_loss" not in record["values"]  # a last mini-batch is not the epoch's loss
        assert "batch_mean" in record["values"]  # Lightning's epoch mean (batch_mean_epoch) is
    assert len(run.metrics("train_loss")) == 12


def test_two_checkpoint_callbacks_best_per_monitor_and_log_model_true(store_dir, store, tmp_path):
    best = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "best", monitor="val_acc", mode="max", save_top_k=2)
    periodic = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "every", every_n_epochs=1, save_top_k=-1)
    fit(
        KoguLogger(path="digits/ckpt", log_model=True),
        max_epochs=3,
        limit_train_batches=5,
        enable_checkpointing=True,
        callbacks=[best, periodic],
    )
    (run,) = store().runs()
    assert run.summary["best_checkpoint"] == os.path.abspath(best.best_model_path)
    assert run.summary["best_checkpoint_score"] == pytest.approx(float(best.best_model_score))
    stored = sorted(a.source for a in run.artifacts())
    expected = {
        os.path.abspath(p)
        for c in (best, periodic)  # what MLflow's and W&B's loggers store
        for p in [*c.best_k_models, c.best_model_path, c.last_model_path]
        if p
    }
    assert set(stored) == expected and len(stored) == 3


def test_a_later_stage_in_a_new_logger_adds_to_the_last_epoch(store_dir, store, tmp_path):
    first = KoguLogger(path="digits/stages")
    _trainer, model = fit(first, max_epochs=2, limit_train_batches=5)
    before = store().run(first.version).epochs()
    again = KoguLogger(path="digits/stages", run_id=first.version)  # as in a new process
    L.Trainer(logger=again, **trainer_kwargs()).test(model, datamodule=DigitsData(), verbose=False)
    after = store().run(first.version).epochs()
    assert after[0] == before[0]  # epoch 1 untouched
    assert {k: v for k, v in after[1]["values"].items() if not k.startswith("test")} == before[1]["values"]
    assert after[1]["values"]["test_accuracy"] > 50.0 and "val_accuracy" in after[1]["values"]


def test_a_failure_finalized_twice_is_one_final_set_led_by_its_cause(store_dir, store, capfd):
    logger = KoguLogger(path="digits/ddp-fail")
    logger.log_metrics({"val_acc": 0.5, "epoch": 0}, step=1)
    message = (
        "\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call "
        'last):\n  File "train.py", line 3, in step\n    raise ValueError\n'
        "ValueError: boom on rank 1\n"
    )
    try:
        raise RuntimeError(message)
    except RuntimeError:
        logger.finalize("failed")
        logger.finalize("failed")  # DDP's launcher finalizes the same failure again
    out = finished_output(capfd)
    (run,) = store().runs()
    assert (run.status, run.reason) == ("failed", "ValueError: boom on rank 1")
    assert "Traceback" in run.texts()[0].text
    assert sum(p["status"] == "failed" for p in progress_lines(out)) == 1
    assert sum("fail" in o for o in kogu_lines(out)) == 1


def test_hparams_metrics_text_and_table(store_dir, store):
    logger = KoguLogger(path="digits/text")
    logger.log_hyperparams({"lr": 0.1}, {"hp_metric": 0.25})
    logger.log_text("samples", columns=["input", "label"], data=[["a", 1], ["b", 2]])
    logger.log_table("preds", data=[[0.5, "x"]])
    with pytest.raises(ValueError, match="2 captions"):
        logger.log_image("img", [[[0, 255]]], caption=["a", "b"])  # wrong use: raised at the call
    logger.finalize("success")
    (run,) = store().runs()
    assert run.params == {"lr": 0.1} and run.summary["hp_metric"] == 0.25
    assert [(t.logger, t.text) for t in run.texts()] == [
        ("samples", "input\tlabel\na\t1\nb\t2"),
        ("preds", "0.5\tx"),
    ]


def test_odd_values_never_lose_the_run(store_dir, store):
    """Every odd value kind through log_hyperparams, log_metrics, summary and image captions: the
    run and every plain value are stored; odd metric values are skipped with a warning."""
    np = pytest.importorskip("numpy")
    hypothesis = pytest.importorskip("hypothesis")
    import torch
    from hypothesis import strategies as st

    odd = st.one_of(
        st.complex_numbers(allow_nan=False, allow_infinity=False),
        st.complex_numbers(allow_nan=False, allow_infinity=False).map(np.complex64),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(np.longdouble),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: torch.tensor(complex(f, 1.0))),
        st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
        st.text(),
        st.integers(),
        st.booleans(),
    )
    logger = KoguLogger(path="digits/odd")
    seen = []

    @hypothesis.settings(max_examples=40, deadline=None, database=None)
    @hypothesis.given(value=odd)
    def feed(value):
        i = len(seen)
        seen.append(i)
        logger.log_hyperparams({f"p{i}": value, "nested": {f"k{i}": [value]}})
        logger.log_metrics({f"m{i}": value, "ok": float(i)}, step=i)
        logger.experiment.summary({f"s{i}": value})
        logger.log_image("img", np.array([[0, 255]], dtype=np.uint8), step=i, caption=str(value))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feed()
        logger.finalize("success")
    run = store().run(logger.version)
    assert run.status == "completed"
    assert len(run.params) >= 2 * len(seen) and len(run.images("img")) == len(seen)
    assert [s for _, s, _ in run.metrics("ok")] == seen
    assert all(type(v) in (bool, int, float, str, list) for v in run.params.values())
