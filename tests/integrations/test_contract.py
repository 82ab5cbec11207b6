"""The adapter contract, one test per rule, parametrised over the three adapters (the shape of
Lightning's ``test_all.py``): rank zero only, tracking off, a broken store never breaks the
training, end statuses, ``run=`` records into an existing run, one constructor validation, and
importing epochline imports no framework. Each driver runs a real, tiny training.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import epochline

os.environ.setdefault("KERAS_BACKEND", "torch")


class Boom(RuntimeError):
    pass


# -- one tiny real training per adapter ---------------------------------------------------------
def _lightning(make, fail=False):
    L = pytest.importorskip("lightning.pytorch")
    from epochline.integrations.lightning import KoguLogger

    from .lightning_models import DigitsData, DigitsMLP, trainer_kwargs

    class FailAt(L.Callback):
        def on_train_epoch_end(self, trainer, module):
            if fail and trainer.current_epoch == 1:
                raise Boom("boom")

    logger = make(KoguLogger)
    trainer = L.Trainer(
        logger=logger,
        callbacks=[FailAt()],
        **trainer_kwargs(max_epochs=2, limit_train_batches=3, limit_val_batches=2),
    )
    trainer.fit(DigitsMLP(images=False), DigitsData())
    return trainer.callback_metrics["val_acc"] >= 0


def _transformers(make, fail=False):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from transformers import TrainerCallback

    from epochline.integrations.transformers import TrackerCallback

    from .test_transformers import make_trainer

    class FailAt(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kwargs):
            if fail and state.epoch >= 2:
                raise Boom("boom")

    callback = make(TrackerCallback)
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        from pathlib import Path

        trainer = make_trainer(Path(out), [callback, FailAt()], n_train=64, n_val=32)
        with callback.guard():  # transformers has no failure event: the guard ends the run in-process
            result = trainer.train()
    return result.training_loss > 0


def _keras(make, fail=False):
    keras = pytest.importorskip("keras")
    from sklearn.datasets import load_digits

    from epochline.integrations.keras import TrackerCallback

    class FailAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if fail and epoch == 1:
                raise Boom("boom")

    x, y = load_digits(return_X_y=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with make(TrackerCallback) as callback:  # Keras has no failure event: the with block ends the run
        history = model.fit(
            x[:300] / 16.0,
            y[:300],
            validation_split=0.2,
            epochs=2,
            batch_size=64,
            verbose=0,
            callbacks=[callback, FailAt()],
        )
    return len(history.history["loss"]) == 2


ADAPTERS = {"lightning": _lightning, "transformers": _transformers, "keras": _keras}
FRAMEWORK = {"lightning": "lightning", "transformers": "transformers", "keras": "keras"}


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request):
    return request.param


def train(adapter, fail=False, **kwargs):
    return ADAPTERS[adapter](lambda cls: cls(**kwargs), fail=fail)


def other_rank(adapter, monkeypatch):
    """Make this process a rank > 0 the way each framework tells it."""
    if adapter == "lightning":
        rank_zero_only = pytest.importorskip("lightning_utilities.core.rank_zero").rank_zero_only
        if getattr(rank_zero_only, "rank", None) is None:
            rank_zero_only.rank = 0  # what a single-process Trainer sets; it must outlive this test
        monkeypatch.setattr(rank_zero_only, "rank", 1)
    elif adapter == "transformers":
        trainer_class = pytest.importorskip("transformers").Trainer
        monkeypatch.setattr(trainer_class, "is_world_process_zero", lambda self: False)
    else:  # Keras has no rank of its own: epochline.init reads the launcher's RANK
        monkeypatch.setenv("RANK", "1")


# -- the contract ----------------------------------------------------------------------------------
def test_rank_zero_only(adapter, store_dir, capfd, monkeypatch):
    other_rank(adapter, monkeypatch)
    assert train(adapter, path=f"contract/{adapter}")
    assert not store_dir.exists()
    assert "PROGRESS:" not in capfd.readouterr().out


def test_tracking_off_trains_and_records_nothing(adapter, store_dir, capfd, monkeypatch):
    monkeypatch.setenv("EPOCHLINE_DISABLED", "1")
    assert train(adapter, path=f"contract/{adapter}")
    assert not store_dir.exists()
    out = capfd.readouterr().out
    assert "PROGRESS:" not in out and '{"metric"' not in out


def test_a_broken_store_never_breaks_the_training(adapter, store_dir, tmp_path):
    not_a_dir = tmp_path / "store-is-a-file"
    not_a_dir.write_text("x")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert train(adapter, path=f"contract/{adapter}", store=str(not_a_dir), emit="none")
    assert any("store" in str(w.message) for w in caught)


def test_end_statuses(adapter, store_dir):
    assert train(adapter, path=f"contract/{adapter}/ok", emit="none")
    with pytest.raises(Boom):
        train(adapter, fail=True, path=f"contract/{adapter}/fail", emit="none")
    with epochline.open(store_dir) as store:
        (ok,) = store.runs(path=f"contract/{adapter}/ok")
        (failed,) = store.runs(path=f"contract/{adapter}/fail")
        assert (ok.status, ok.reason) == ("completed", None)
        assert [e["epoch"] for e in ok.epochs()] == [1, 2]
        assert (failed.status, failed.reason) == ("failed", "Boom: boom")


def test_an_existing_run_is_recorded_into_and_left_open(adapter, store_dir):
    with epochline.init(f"contract/{adapter}/own", emit="none") as run:
        run.log({"mine": 1.0}, step=0)
        assert train(adapter, run=run)
        assert not run.finished  # the user's run: the user ends it
    with epochline.open(store_dir) as store:
        (stored,) = store.runs()
        assert stored.status == "completed" and "mine" in stored.metric_keys()
        assert [e["epoch"] for e in stored.epochs()] == [1, 2]


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"accuracy_scale": "percnt"}, ValueError, ["'fraction' or 'percent'"]),
        ({"emit": "kogu,progres"}, ValueError, ["did you mean 'progress'"]),
        ({"run_id": "bad id/"}, ValueError, ["letters, digits"]),
        ({"path": 5}, TypeError, ["path must be a string"]),
        ({"tagz": ["x"]}, TypeError, ["'tagz'"]),
    ],
)
def test_one_constructor_validation(adapter, kwargs, error, words, store_dir):
    def build(cls):
        with pytest.raises(error) as info:
            cls(**kwargs)
        assert all(w in str(info.value) for w in words), str(info.value)
        raise _Built

    class _Built(Exception):
        pass

    with pytest.raises(_Built):
        ADAPTERS[adapter](build)
    with pytest.raises(error):  # epochline.init agrees
        epochline.init(**kwargs)


def test_importing_epochline_imports_no_framework(adapter):
    code = (
        "import sys, epochline, epochline.integrations, epochline.integrations._support; "
        f"assert {FRAMEWORK[adapter]!r} not in sys.modules and 'torch' not in sys.modules, "
        "sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def epochline_imports(source):
    """What a module's source takes from epochline other than its public API and the private
    ``integrations/_*.py`` helpers: ``epochline.x`` / ``from epochline.x import`` modules, names of
    ``from epochline import`` and ``epochline.<attribute>`` not in ``epochline.__all__``, and
    relative imports of public modules."""
    public = set(epochline.__all__)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("epochline.")]
        elif isinstance(node, ast.ImportFrom) and node.level:  # `from ._support import x`, `from . import _x`
            modules = [node.module] if node.module else [a.name for a in node.names]
            found += ["." * node.level + m for m in modules if not m.startswith("_")]
        elif isinstance(node, ast.ImportFrom) and node.module == "epochline":
            found += [f"epochline.{a.name}" for a in node.names if a.name not in public]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("epochline."):
            found.append(node.module)
        elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "epochline":
            found += [f"epochline.{node.attr}"] if node.attr not in public else []
    return found


def test_the_import_rule_finds_what_it_forbids():
    bad = (
        "import epochline.run\nfrom epochline.values import flatten_params\nfrom epochline import lifecycle\n"
        "from . import keras\nimport epochline\nepochline.lifecycle.active_runs()\nepochline.init()\n"
        "from ._support import open_run\nfrom . import _keras_model as fw\n"
    )
    assert epochline_imports(bad) == [
        "epochline.run",
        "epochline.values",
        "epochline.lifecycle",
        ".keras",
        "epochline.lifecycle",
    ]


def test_an_adapter_module_uses_only_the_public_api_and_the_private_helpers(adapter):
    """The adapter is a translation over the public API; what else of the core it needs comes
    through ``integrations/_support.py`` (one boundary for the core to keep in step)."""
    spec = importlib.util.find_spec(f"epochline.integrations.{adapter}")  # imports no framework
    assert epochline_imports(Path(spec.origin).read_text(encoding="utf-8")) == []
