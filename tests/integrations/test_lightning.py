"""The Lightning adapter with a real Trainer on CPU (scikit-learn's bundled digits, tiny MLP)."""

from __future__ import annotations

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
    fit(logger, model=DigitsMLP(config={"optimizer": {"name": "adam", "betas": [0.9, 0.999]}}),
        callbacks=[seen])
    out = capfd.readouterr().out

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
    assert {"train_loss_step", "train_loss_epoch", "train_acc", "val_loss", "val_acc"} <= set(run.metric_keys())
    steps = [s for _, s, _ in run.metrics("train_loss_step")]
    assert steps == sorted(set(steps)) and steps[0] == 4  # log_every_n_steps=5: steps 4, 9, ...
    assert [r["epoch"] for r in run.metric_rows("val_acc")] == [1, 2, 3]
    assert all(0.0 < v <= 1.0 for _, _, v in run.metrics("val_acc"))  # stored as logged

    images = run.images("weights")
    assert [i.caption for i in images] == ["epoch 1", "epoch 2", "epoch 3"]
    assert [i.step for i in images] == sorted(i.step for i in images) and images[0].step > 0

    lines = progress_lines(out)
    assert [(p["epoch"], p["status"]) for p in lines] == [(1, "training"), (2, "training"),
                                                           (3, "training"), (3, "completed")]
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
    out_test = capfd.readouterr().out
    trainer.predict(model, datamodule=DigitsData())
    out_predict = capfd.readouterr().out

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
    out = capfd.readouterr().out
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
    assert progress_lines(capfd.readouterr().out)[-1]["status"] == "interrupted"


def test_resume_from_checkpoint_continues_the_run(store_dir, store, tmp_path):
    ckpt = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = KoguLogger(path="digits/resume", log_model="all")
    fit(first, max_epochs=2, enable_checkpointing=True, callbacks=[ckpt])
    (run,) = store().runs()
    steps_before = [s for _, s, _ in run.metrics("train_loss_step")]

    again = KoguLogger(path="digits/resume", run_id=first.version)
    ckpt2 = L.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt2")
    seed(0)
    trainer = L.Trainer(logger=again, callbacks=[ckpt2], **trainer_kwargs(max_epochs=4, enable_checkpointing=True))
    trainer.fit(DigitsMLP(), DigitsData(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))

    (run,) = store().runs()
    assert run.id == first.version and run.status == "completed"
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3, 4]
    assert all(e["total_epochs"] == 4 for e in run.epochs()[2:])
    steps = [s for _, s, _ in run.metrics("train_loss_step")]
    assert steps[:len(steps_before)] == steps_before and steps == sorted(set(steps))
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
    out = capfd.readouterr().out
    runs = store().runs()
    assert len(runs) == 1 and runs[0].id == logger.version and runs[0].status == "completed"
    assert [e["epoch"] for e in runs[0].epochs()] == [1, 2]
    assert [(p["epoch"], p["status"]) for p in progress_lines(out)] == [
        (1, "training"), (2, "training"), (2, "completed")]
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
    assert not store_dir.exists() and capfd.readouterr().out == ""  # no run, not even a store


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
    assert [(p["epoch"], p["total_epochs"]) for p in progress_lines(capfd.readouterr().out)] == [
        (1, 2), (2, 2), (2, 2)]


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
    trainer = pl.Trainer(logger=[logger, pl.loggers.CSVLogger(store_dir.parent / "csv")],
                         **trainer_kwargs(max_epochs=2))
    trainer.fit(model_cls(), data_cls())
    (run,) = store().runs()
    assert run.status == "completed" and [e["epoch"] for e in run.epochs()] == [1, 2]
    assert run.epochs()[-1]["values"]["val_accuracy"] > 50.0


def test_importing_epochline_imports_no_framework():
    code = ("import sys, epochline, epochline.integrations; "
            "assert not {'torch', 'lightning', 'pytorch_lightning'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
