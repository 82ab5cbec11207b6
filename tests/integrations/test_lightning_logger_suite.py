# ruff: noqa: B010, RUF021  (vendored from Lightning as it is)
# Vendored from Lightning's own logger tests, with KoguLogger added to the logger list:
#   tests/tests_pytorch/loggers/test_all.py, test_logger.py and the thread-leak check of
#   tests/tests_pytorch/conftest.py, at tag 2.6.5 of github.com/Lightning-AI/pytorch-lightning
#   (the installed version is 2.6.6, whose tag the mirror lacks; these files are identical from 2.6.5
#   to the newest commit).
#
# Copyright The Lightning AI team.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
#
# Changes (epochline): the built-in loggers that need a remote service or mocks (Comet, MLflow,
# W&B) are left out; CSVLogger and TensorBoardLogger stay, so each test shows that the built-in
# loggers pass it too. Tests written against one built-in logger's internals (mocked clients,
# TensorBoard's ``hp_metric``) are rewritten against KoguLogger's public behaviour: what reaches
# the store. Deliberate differences are listed in docs/lightning.md.
from __future__ import annotations

import inspect
import os
import pickle
import sys
import threading
from argparse import Namespace

import pytest

L = pytest.importorskip("lightning.pytorch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch import Callback, Trainer  # noqa: E402
from lightning.pytorch.demos.boring_classes import BoringModel  # noqa: E402
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger  # noqa: E402
from lightning.pytorch.loggers.logger import DummyExperiment, Logger  # noqa: E402
from lightning.pytorch.tuner.tuning import Tuner  # noqa: E402

import epochline  # noqa: E402
from epochline.integrations.lightning import KoguLogger  # noqa: E402

from .conftest import finished_output  # noqa: E402

ALL_LOGGER_CLASSES = (KoguLogger, CSVLogger, TensorBoardLogger)


@pytest.fixture(autouse=True)
def _store(store_dir):
    """KoguLogger takes no ``save_dir``: its store is EPOCHLINE_STORE (a fresh one per test)."""
    return store_dir


@pytest.fixture(autouse=True)
def preserve_global_rank_variable():
    """Ensures that the rank_zero_only.rank global variable gets reset in each test."""
    from lightning_utilities.core.rank_zero import rank_zero_only as rank_zero_only_utilities

    from lightning.fabric.utilities.rank_zero import rank_zero_only as rank_zero_only_fabric
    from lightning.pytorch.utilities.rank_zero import rank_zero_only as rank_zero_only_pytorch

    functions = (rank_zero_only_pytorch, rank_zero_only_fabric, rank_zero_only_utilities)
    ranks = [getattr(fn, "rank", None) for fn in functions]
    yield
    for fn, rank in zip(functions, ranks):
        if rank is not None:
            setattr(fn, "rank", rank)


@pytest.fixture(autouse=True)
def thread_police_duuu_daaa_duuu_daaa():
    """Lightning's leak check: a test may leave no live thread behind (daemon threads are stopped)."""
    from concurrent.futures.process import _ExecutorManagerThread

    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
    from tqdm import TMonitor

    active_threads_before = set(threading.enumerate())
    yield
    active_threads_after = set(threading.enumerate())

    for thread in active_threads_after - active_threads_before:
        stop = getattr(thread, "stop", None) or getattr(thread, "exit", None)
        if thread.daemon and callable(stop):
            # A daemon thread would anyway be stopped at the end of a program
            # We do it preemptively here to reduce the risk of interactions with other tests that run after
            stop()
            assert not thread.is_alive()
        elif isinstance(thread, _ChildProcessObserver):
            thread.join(timeout=10)
        elif (
            thread.name == "QueueFeederThread"  # tensorboardX
            or thread.name == "QueueManagerThread"  # torch.compile
            or "(_read_thread)" in thread.name  # torch.compile
        ):
            thread.join(timeout=20)
        elif isinstance(thread, TMonitor):
            thread.exit()
        elif (
            sys.version_info >= (3, 9)
            and isinstance(thread, _ExecutorManagerThread)
            or "ThreadPoolExecutor-" in thread.name
            or thread.name == "InductorSubproc"  # torch.compile
        ):
            # probably `torch.compile`, can't narrow it down further
            continue
        elif thread.name == "fsspecIO":
            continue
        else:
            raise AssertionError(f"Test left zombie thread: {thread}")


def _get_logger_args(logger_class, save_dir):
    logger_args = {}
    if "save_dir" in inspect.getfullargspec(logger_class).args:
        logger_args.update(save_dir=str(save_dir))
    if "offline_mode" in inspect.getfullargspec(logger_class).args:
        logger_args.update(offline_mode=True)
    if "offline" in inspect.getfullargspec(logger_class).args:
        logger_args.update(offline=True)
    return logger_args


def _instantiate_logger(logger_class, save_dir, **override_kwargs):
    args = _get_logger_args(logger_class, save_dir)
    args.update(**override_kwargs)
    return logger_class(**args)


def _only_run(store_dir):
    (run,) = epochline.open(store_dir).runs()
    return run


# -- test_all.py ------------------------------------------------------------------------------------
@pytest.mark.parametrize("logger_class", ALL_LOGGER_CLASSES)
def test_loggers_fit_test_all(logger_class, tmp_path, monkeypatch, store_dir):
    """Verify that basic functionality of all loggers."""
    monkeypatch.chdir(tmp_path)

    class CustomModel(BoringModel):
        def training_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("train_some_val", loss)
            return {"loss": loss}

        def on_validation_epoch_end(self):
            self.log_dict({"early_stop_on": torch.tensor(1), "val_loss": torch.tensor(0.5)})

        def on_test_epoch_end(self):
            self.log("test_loss", torch.tensor(2))

    class StoreHistoryLogger(logger_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.history = []

        def log_metrics(self, metrics, step):
            super().log_metrics(metrics, step)
            self.history.append((step, metrics))

    logger_args = _get_logger_args(logger_class, tmp_path)
    logger = StoreHistoryLogger(**logger_args)

    model = CustomModel()
    trainer = Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        logger=logger,
        limit_train_batches=1,
        limit_val_batches=1,
        log_every_n_steps=1,
    )
    trainer.fit(model)
    trainer.test()

    log_metric_names = [(s, sorted(m.keys())) for s, m in logger.history]
    expected = [
        (0, ["epoch", "train_some_val"]),
        (0, ["early_stop_on", "epoch", "val_loss"]),
        (1, ["epoch", "test_loss"]),
    ]
    assert log_metric_names == expected

    if logger_class is KoguLogger:  # epochline: what reached the store
        run = _only_run(store_dir)
        assert run.status == "completed"
        assert [e["epoch"] for e in run.epochs()] == [1]
        assert run.epochs()[0]["values"]["val_loss"] == 0.5 and run.epochs()[0]["values"]["test_loss"] == 2
        assert [(r["step"], r["epoch"]) for r in run.metric_rows("test_loss")] == [(1, 1)]


@pytest.mark.parametrize("logger_class", ALL_LOGGER_CLASSES)
def test_loggers_pickle_all(tmp_path, monkeypatch, logger_class):
    """Test that the logger objects can be pickled.

    This test only makes sense if the packages are installed.

    """
    _test_loggers_pickle(tmp_path, monkeypatch, logger_class)


def _test_loggers_pickle(tmp_path, monkeypatch, logger_class: Logger):
    """Verify that pickling trainer with logger works."""
    logger_args = _get_logger_args(logger_class, tmp_path)
    logger = logger_class(**logger_args)

    # this can cause pickle error if the experiment object is not picklable
    # the logger needs to remove it from the state before pickle
    _ = logger.experiment

    # logger also has to avoid adding un-picklable attributes to self in .save
    logger.log_metrics({"a": 1})
    logger.save()

    # test pickling loggers
    pickle.dumps(logger)

    trainer = Trainer(max_epochs=1, logger=logger)
    pkl_bytes = pickle.dumps(trainer)

    trainer2 = pickle.loads(pkl_bytes)
    trainer2.logger.log_metrics({"acc": 1.0})

    # make sure we restored properly
    assert trainer2.logger.name == logger.name
    assert trainer2.logger.save_dir == logger.save_dir

    if logger_class is KoguLogger:  # epochline: one live run per id in this process
        assert trainer2.logger.experiment is logger.experiment


@pytest.mark.parametrize("tuner_method", ["lr_find", "scale_batch_size"])
def test_logger_reset_correctly(tmp_path, tuner_method):
    """Test that the tuners do not alter the logger reference."""

    class CustomModel(BoringModel):
        def __init__(self, lr=0.1, batch_size=1):
            super().__init__()
            self.save_hyperparameters()

    model = CustomModel()
    trainer = Trainer(default_root_dir=tmp_path, max_epochs=1, logger=KoguLogger(), enable_progress_bar=False)
    tuner = Tuner(trainer)

    logger1 = trainer.logger
    kwargs = {"num_training": 10} if tuner_method == "lr_find" else {"max_trials": 2, "steps_per_trial": 1}
    getattr(tuner, tuner_method)(model, **kwargs)
    logger2 = trainer.logger
    logger3 = model.logger

    assert logger1 == logger2, "Finder altered the logger of trainer"
    assert logger2 == logger3, "Finder altered the logger of model"


class LazyInitExperimentCheck(Callback):
    def setup(self, trainer, pl_module, stage=None):
        if trainer.global_rank > 0:
            return
        if hasattr(trainer.logger, "_experiment"):
            assert trainer.logger._experiment


class RankZeroLoggerCheck(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        is_dummy = isinstance(trainer.logger.experiment, DummyExperiment)
        if trainer.is_global_zero:
            assert not is_dummy
        else:
            assert is_dummy
            assert pl_module.logger.experiment.something(foo="bar") is None


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="ddp_spawn on CPU")
def test_logger_initialization(tmp_path, store_dir):
    """Test that loggers get replaced by dummy loggers on global rank > 0 and that the experiment object is available
    at the right time in Trainer."""
    logger = KoguLogger()
    callbacks = [LazyInitExperimentCheck(), RankZeroLoggerCheck()]
    model = BoringModel()
    trainer = Trainer(
        logger=logger,
        default_root_dir=tmp_path,
        strategy="ddp_spawn",
        accelerator="cpu",
        devices=2,
        max_steps=1,
        callbacks=callbacks,
        enable_progress_bar=False,
    )
    trainer.fit(model)
    assert _only_run(store_dir).status == "completed"  # epochline: one run, from rank zero


def test_logger_with_prefix_all(tmp_path, store_dir):
    """Test that prefix is added at the beginning of the metric keys."""
    prefix = "tmp"
    logger = _instantiate_logger(KoguLogger, save_dir=tmp_path, prefix=prefix)
    logger.log_metrics({"test": 1.0}, step=0)
    logger.finalize("success")
    assert _only_run(store_dir).metric_keys() == ["tmp-test"]

    # CSV (the built-in logger with the same rule)
    logger = _instantiate_logger(CSVLogger, save_dir=tmp_path, prefix=prefix)
    logger.log_metrics({"test": 1.0}, step=0)
    assert logger.experiment.metrics[0]["tmp-test"] == 1.0


def test_logger_default_name(tmp_path):
    """Lightning's loggers default to ``lightning_logs``; KoguLogger's name is the run's path, whose
    default is epochline's ``default`` (a deliberate difference, docs/lightning.md)."""
    assert CSVLogger(save_dir=tmp_path).name == "lightning_logs"
    assert KoguLogger().name == "default"


# -- test_logger.py ---------------------------------------------------------------------------------
class CustomLogger(KoguLogger):
    """test_logger.py's CustomLogger, as a KoguLogger that also remembers what it was given."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.hparams_logged = None
        self.metrics_logged = {}
        self.finalized_status = None
        self.after_save_checkpoint_called = False

    def log_hyperparams(self, params, *args, **kwargs):
        super().log_hyperparams(params, *args, **kwargs)
        self.hparams_logged = params

    def log_metrics(self, metrics, step=None):
        super().log_metrics(metrics, step)
        self.metrics_logged = metrics

    def finalize(self, status):
        super().finalize(status)
        self.finalized_status = status

    def after_save_checkpoint(self, checkpoint_callback):
        super().after_save_checkpoint(checkpoint_callback)
        self.after_save_checkpoint_called = True


def test_custom_logger(tmp_path, store_dir):
    class CustomModel(BoringModel):
        def training_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("train_loss", loss)
            return {"loss": loss}

    logger = CustomLogger()
    model = CustomModel()
    trainer = Trainer(
        max_steps=2, log_every_n_steps=1, logger=logger, default_root_dir=tmp_path, enable_progress_bar=False
    )
    trainer.fit(model)
    assert trainer.state.finished, f"Training failed with {trainer.state}"
    assert logger.metrics_logged != {}
    assert logger.after_save_checkpoint_called
    assert logger.finalized_status == "success"
    run = _only_run(store_dir)
    assert run.status == "completed" and run.summary["best_checkpoint"].endswith(".ckpt")
    assert os.path.isabs(run.summary["best_checkpoint"])


def test_multiple_loggers(tmp_path, store_dir):
    class CustomModel(BoringModel):
        def training_step(self, batch, batch_idx):
            loss = self.step(batch)
            self.log("train_loss", loss)
            return {"loss": loss}

    model = CustomModel()
    logger1 = CustomLogger()
    logger2 = CustomLogger()

    trainer = Trainer(
        max_steps=2,
        log_every_n_steps=1,
        logger=[logger1, logger2],
        default_root_dir=tmp_path,
        enable_progress_bar=False,
    )
    trainer.fit(model)
    assert trainer.state.finished, f"Training failed with {trainer.state}"

    assert logger1.hparams_logged is None
    assert logger1.metrics_logged != {}
    assert logger1.finalized_status == "success"

    assert logger2.hparams_logged is None
    assert logger2.metrics_logged != {}
    assert logger2.finalized_status == "success"
    runs = epochline.open(store_dir).runs()  # epochline: two loggers, two runs
    assert sorted(r.id for r in runs) == sorted([logger1.version, logger2.version])
    assert all(r.status == "completed" for r in runs)


def test_multiple_loggers_pickle(tmp_path):
    """Verify that pickling trainer with multiple loggers works."""
    logger1 = CustomLogger()
    logger2 = CustomLogger()

    trainer = Trainer(logger=[logger1, logger2])
    pkl_bytes = pickle.dumps(trainer)
    trainer2 = pickle.loads(pkl_bytes)
    for logger in trainer2.loggers:
        logger.log_metrics({"acc": 1.0}, 0)

    for logger in trainer2.loggers:
        assert logger.metrics_logged == {"acc": 1.0}


def test_adding_step_key(tmp_path, store_dir, capfd):
    class CustomKoguLogger(KoguLogger):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.logged_step = 0

        def log_metrics(self, metrics, step):
            if "val_acc" in metrics:
                assert step == self.logged_step

            super().log_metrics(metrics, step)

    class CustomModel(BoringModel):
        def on_train_epoch_end(self):
            self.logger.logged_step += 1
            self.log_dict({"step": self.logger.logged_step, "train_acc": self.logger.logged_step / 10})

        def on_validation_epoch_end(self):
            self.logger.logged_step += 1
            self.log_dict({"step": self.logger.logged_step, "val_acc": self.logger.logged_step / 10})

    model = CustomModel()
    trainer = Trainer(
        max_epochs=3,
        logger=CustomKoguLogger(),
        default_root_dir=tmp_path,
        limit_train_batches=0.1,
        limit_val_batches=0.1,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
    )
    trainer.fit(model)
    # epochline: a logged "step" makes Lightning leave out "epoch"; the epoch comes from the trainer
    run = _only_run(store_dir)
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3]
    assert [r["epoch"] for r in run.metric_rows("val_acc")] == [1, 2, 3]
    assert [e["values"]["val_accuracy"] for e in run.epochs()] == pytest.approx([10.0, 30.0, 50.0])
    progress = [line for line in finished_output(capfd).splitlines() if line.startswith("PROGRESS:")]
    assert len(progress) == 4 and '"completed"' in progress[-1]


def test_dummyexperiment_support_item_assignment(monkeypatch):
    """Test that the DummyExperiment supports item assignment (KoguLogger's on a rank > 0)."""
    from lightning_utilities.core.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    experiment = KoguLogger().experiment
    assert isinstance(experiment, DummyExperiment) and isinstance(experiment, epochline.NoOpRun)
    experiment["variable"] = "value"
    assert experiment["variable"] != "value"  # this is only a stateless mock experiment
    assert experiment.add_image("x", None) is None and experiment.log({"a": 1}) is None


def test_np_sanitization(store_dir):
    logger = KoguLogger()
    np_params = {
        "np.bool_": np.bool_(1),
        "np.byte": np.byte(2),
        "np.intc": np.intc(3),
        "np.int_": np.int_(4),
        "np.longlong": np.longlong(5),
        "np.single": np.single(6.0),
        "np.double": np.double(8.9),
        "np.csingle": np.csingle(7 + 2j),
        "np.cdouble": np.cdouble(9 + 4j),
    }
    sanitized_params = {
        "np.bool_": True,
        "np.byte": 2,
        "np.intc": 3,
        "np.int_": 4,
        "np.longlong": 5,
        "np.single": 6.0,
        "np.double": 8.9,
        "np.csingle": "(7+2j)",
        "np.cdouble": "(9+4j)",
    }
    logger.log_hyperparams(Namespace(**np_params))
    logger.finalize("success")
    run = _only_run(store_dir)
    assert run.status == "completed"
    assert run.params == sanitized_params


@pytest.mark.parametrize("log", [True, False])
def test_log_hyperparams_being_called(tmp_path, log, store_dir):
    class TestModel(BoringModel):
        def __init__(self, param_one, param_two):
            super().__init__()
            self.save_hyperparameters(logger=log)

    model = TestModel("pytorch", "lightning")
    logger = CustomLogger()
    trainer = Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=0.1,
        limit_val_batches=0.1,
        num_sanity_val_steps=0,
        logger=logger,
        enable_progress_bar=False,
    )
    trainer.fit(model)

    if log:
        assert logger.hparams_logged == {"param_one": "pytorch", "param_two": "lightning"}
        assert _only_run(store_dir).params == {"param_one": "pytorch", "param_two": "lightning"}
    else:
        assert logger.hparams_logged is None
        assert _only_run(store_dir).params == {}
