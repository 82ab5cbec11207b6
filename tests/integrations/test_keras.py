"""Keras 3 TrackerCallback: real fits on scikit-learn's digits (torch backend, CPU, a few seconds).

Failure paths are tested twice: in-process through the callback used as a context manager, and in
real subprocesses through the core's chained excepthook / atexit (which only work at process end).
"""

import math
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")

import epochline  # noqa: E402
from epochline.integrations.keras import TrackerCallback  # noqa: E402
from linecheck import KOGU_KEY, protocol_lines  # noqa: E402

from .conftest import finished_output  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

EPOCHS = 4
BATCH = 64


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    return x[order], y[order].astype("int64")


def make_model(lr=0.01):
    keras.backend.clear_session()  # layer names (dense, dense_1) do not depend on earlier tests
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def fit(model, digits, callbacks, epochs=EPOCHS, n=1400):
    x, y = digits
    return model.fit(
        x[:n], y[:n], validation_split=0.2, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=callbacks
    )


def only_run(store):
    runs = store().runs()
    assert len(runs) == 1, runs
    return runs[0]


class RaiseAt(keras.callbacks.Callback):
    """Raises ``exc`` at the end of epoch ``epoch`` (0-based), like a user callback that breaks."""

    def __init__(self, epoch, exc):
        super().__init__()
        self.epoch, self.exc = epoch, exc

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise self.exc


# -- the happy path -----------------------------------------------------------------------------
def test_fit_records_params_epochs_metrics_and_completes(store_dir, store, digits):
    model = make_model()
    cb = TrackerCallback(path="digits/keras", params={"hidden": 32, "seed": 0}, tags=("keras",))
    history = fit(model, digits, [cb]).history
    assert cb.run.status == "completed" and cb.run.in_progress is None

    view = only_run(store)
    assert view.status == "completed" and view.path == "digits/keras" and view.tags == ["keras"]
    assert view.framework == "keras"
    steps = math.ceil(1400 * 0.8 / BATCH)
    p = view.params
    assert (p["epochs"], p["steps"], p["verbose"]) == (EPOCHS, steps, 0)
    assert p["hidden"] == 32 and p["seed"] == 0
    assert p["optimizer.class"] == "Adam" and p["optimizer.learning_rate"] == pytest.approx(0.01)
    assert p["optimizer.beta_1"] == pytest.approx(0.9)
    assert p["loss"] == "sparse_categorical_crossentropy"
    assert p["model.class"] == "Sequential" and p["model.params"] == model.count_params() == 2410
    assert p["model.trainable_params"] == 2410
    assert p["model.layers"] == ["Dense: 2080", "Dense: 330"]
    assert "verbose" in view.ignored_params and "model.layer_names" in view.ignored_params
    summary_text = [t.text for t in view.texts() if t.logger == "keras.summary"]
    assert len(summary_text) == 1 and "dense_1 (Dense)" in summary_text[0] and "2,410" in summary_text[0]

    # one record per epoch, 1-indexed, accuracies in percent, equal to Keras' own history
    records = view.epochs()
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert all(r["total_epochs"] == EPOCHS for r in records)
    for i, r in enumerate(records):
        v = r["values"]
        assert set(r["percent"]) == {"train_accuracy", "val_accuracy"}
        assert v["train_loss"] == pytest.approx(history["loss"][i])
        assert v["val_loss"] == pytest.approx(history["val_loss"][i])
        assert v["train_accuracy"] == pytest.approx(100 * history["accuracy"][i])
        assert v["val_accuracy"] == pytest.approx(100 * history["val_accuracy"][i])
        assert 10.0 < v["val_accuracy"] <= 100.0  # above chance (10 classes), in percent
    assert records[-1]["values"]["val_accuracy"] > 80.0

    # the series, at step = optimizer steps so far, with the 1-indexed epoch
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(view.metric_keys())
    rows = view.metric_rows("val_accuracy")
    assert [r["step"] for r in rows] == [steps * (i + 1) for i in range(EPOCHS)]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["value"] for r in rows] == pytest.approx(history["val_accuracy"])
    assert view.metrics("learning_rate")[0][2] == pytest.approx(0.01)
    assert not any(k.startswith("batch_") for k in view.metric_keys())
    assert view.summary["epochs_trained"] == EPOCHS
    # final results = the last epoch's record (the Kogu iteration -1 metrics): percent, like it
    assert view.summary["val_accuracy"] == pytest.approx(100 * history["val_accuracy"][-1])
    assert view.summary["train_loss"] == pytest.approx(history["loss"][-1])
    assert records[-1]["values"]["learning_rate"] == pytest.approx(0.01)


def test_batch_hook_exists_only_when_asked_for():
    """Without per-batch logging Keras may keep dispatching batch callbacks asynchronously."""
    from keras.src.utils.python_utils import is_default  # what Keras' CallbackList checks

    if not is_default(keras.callbacks.Callback().on_train_batch_end):
        pytest.skip("this Keras version dispatches every batch hook (it marks no default hooks)")
    assert is_default(TrackerCallback().on_train_batch_end)
    assert not is_default(TrackerCallback(log_every_n_batches=3).on_train_batch_end)
    for bad in (0, True, 2.5):
        with pytest.raises(ValueError, match="log_every_n_batches must be a positive integer"):
            TrackerCallback(log_every_n_batches=bad)
    with pytest.raises(TypeError, match=r"images must be a function fn\(model, epoch\)"):
        TrackerCallback(images={"a": 1})


def test_per_batch_logging_every_n_batches(store_dir, store, digits):
    cb = TrackerCallback(path="digits/batches", log_every_n_batches=5)
    fit(make_model(), digits, [cb], epochs=2)
    view = only_run(store)
    steps = math.ceil(1400 * 0.8 / BATCH)  # 18 per epoch
    batch_steps = [s for _, s, _ in view.metrics("batch_loss")]
    assert batch_steps == list(range(5, 2 * steps + 1, 5))
    assert {r["stage"] for r in view.metric_rows("batch_accuracy")} == {"train"}
    assert all(0.0 <= v <= 1.0 for _, _, v in view.metrics("batch_accuracy"))
    # the per-epoch series stay one value per epoch, at the epoch's last step
    assert [s for _, s, _ in view.metrics("loss")] == [steps, 2 * steps]
    assert view.status == "completed"


def test_images_from_a_function_each_epoch(store_dir, store, digits):
    seen = []

    def images(model, epoch):
        seen.append(epoch)
        kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
        scaled = (kernel - kernel.min()) / (kernel.max() - kernel.min())
        return {"first_layer": (scaled * 255).astype("uint8")} if epoch % 2 == 0 else None

    fit(make_model(), digits, [TrackerCallback(path="digits/images", images=images)])
    view = only_run(store)
    assert seen == [1, 2, 3, 4]
    shots = view.images("first_layer")
    assert [(i.caption, i.width, i.height) for i in shots] == [("epoch 2", 32, 64), ("epoch 4", 32, 64)]
    assert all(i.path.exists() for i in shots)
    assert view.status == "completed"


def test_a_failing_images_function_is_warned_and_training_goes_on(store_dir, store, digits):
    def broken(model, epoch):
        raise ValueError("no such layer")

    with pytest.warns(RuntimeWarning, match="images function failed"):
        fit(make_model(), digits, [TrackerCallback(path="digits/broken", images=broken)], epochs=2)
    view = only_run(store)
    assert view.status == "completed" and len(view.epochs()) == 2 and view.images() == []


def test_callback_run_is_usable_before_and_during_fit(store_dir, store, digits):
    cb = TrackerCallback(path="digits/extra")
    cb.run.comment("before fit")

    class Note(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            cb.run.log({"custom": epoch * 2.0})

    fit(make_model(), digits, [cb, Note()], epochs=2)
    view = only_run(store)
    assert view.comments() == ["before fit"]
    assert [v for _, _, v in view.metrics("custom")] == [0.0, 2.0]
    assert view.status == "completed"


# -- evaluate after fit --------------------------------------------------------------------------
def test_evaluate_after_fit_adds_test_metrics_to_the_same_run(store_dir, store, digits):
    x, y = digits
    cb = TrackerCallback(path="digits/eval")
    fit(make_model(), digits, [cb])
    model = cb.model
    first_id = cb.run.id
    assert cb.run.status == "completed"
    result = model.evaluate(x[1400:], y[1400:], verbose=0, callbacks=[cb], return_dict=True)

    view = only_run(store)
    assert view.id == first_id and view.status == "completed" and view.reason is None
    assert view.metrics("test_accuracy")[0][2] == pytest.approx(result["accuracy"])
    assert view.metric_rows("test_loss")[0]["stage"] == "test"
    assert view.summary["test_accuracy"] == pytest.approx(100 * result["accuracy"])
    last = view.epochs()[-1]
    assert last["epoch"] == EPOCHS and last["total_epochs"] == EPOCHS
    assert last["values"]["test_accuracy"] == pytest.approx(100 * result["accuracy"])
    assert last["values"]["test_loss"] == pytest.approx(result["loss"])
    assert "val_accuracy" in last["values"] and "test_accuracy" in last["percent"]
    assert len(view.epochs()) == EPOCHS
    # fit's own validation did not produce test_* values
    assert len(view.metrics("test_loss")) == 1


def test_evaluate_inside_the_with_block_keeps_one_open_run(store_dir, store, digits):
    x, y = digits
    with TrackerCallback(path="digits/with") as cb:
        fit(make_model(), digits, [cb], epochs=2)
        assert not cb.run.finished and cb.run.in_progress is None  # the block ends the run
        cb.model.evaluate(x[1400:], y[1400:], verbose=0, callbacks=[cb])
        assert not cb.run.finished
    view = only_run(store)
    assert view.status == "completed" and "test_accuracy" in view.epochs()[-1]["values"]


def test_evaluate_on_its_own_is_a_run_of_its_own(store_dir, store, digits):
    x, y = digits
    model = make_model()
    model.fit(x[:500], y[:500], epochs=1, verbose=0)
    model.evaluate(x[1400:], y[1400:], verbose=0, callbacks=[TrackerCallback(path="digits/evalonly")])
    view = only_run(store)
    assert view.status == "completed" and set(view.metric_keys()) == {"test_loss", "test_accuracy"}
    assert view.epochs() == [] and 10.0 < view.summary["test_accuracy"] <= 100.0


# -- ModelCheckpoint -----------------------------------------------------------------------------
def test_best_model_from_model_checkpoint_is_stored(store_dir, store, digits, tmp_path):
    ckpt = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True
    )
    fit(make_model(), digits, [ckpt, TrackerCallback(path="digits/ckpt", checkpoint=ckpt)])
    view = only_run(store)
    (artifact,) = view.artifacts()
    assert artifact.name == "best.keras" and artifact.size == (tmp_path / "best.keras").stat().st_size
    assert view.summary["best_model_file"] == str(tmp_path / "best.keras") and os.path.isabs(str(tmp_path))
    assert view.summary["best_model_monitor"] == "val_accuracy"
    assert view.summary["best_model_value"] == pytest.approx(
        max(r["values"]["val_accuracy"] for r in view.epochs()) / 100
    )


def test_checkpoint_template_stores_the_newest_file(store_dir, store, digits, tmp_path):
    template = str(tmp_path / "model-{epoch:02d}.keras")
    ckpt = keras.callbacks.ModelCheckpoint(template)
    fit(make_model(), digits, [ckpt, TrackerCallback(path="digits/tmpl", checkpoint=template)], epochs=3)
    view = only_run(store)
    assert [a.name for a in view.artifacts()] == ["model-03.keras"]
    assert "best_model_monitor" not in view.summary  # not save_best_only: just the newest


# -- failure, in-process: the callback as a context manager --------------------------------------
@pytest.mark.parametrize(
    "exc,status,reason",
    [
        (RuntimeError("boom in epoch 2"), "failed", "RuntimeError: boom in epoch 2"),
        (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
    ],
)
def test_with_block_ends_the_run_when_fit_raises(store_dir, store, digits, exc, status, reason):
    with pytest.raises(type(exc)):
        with TrackerCallback(path="digits/raise") as cb:
            fit(make_model(), digits, [cb, RaiseAt(1, exc)])
    view = only_run(store)
    assert (view.status, view.reason) == (status, reason)
    assert [r["epoch"] for r in view.epochs()] == [1, 2]  # the tracker ran before RaiseAt
    assert cb.run.finished and cb.run.in_progress is None


def test_a_fit_that_raised_inside_the_with_block_and_was_caught_ends_the_run_failed(store_dir, store, digits):
    with TrackerCallback(path="digits/caught") as cb:
        try:
            fit(make_model(), digits, [cb, RaiseAt(0, RuntimeError("x"))])
        except RuntimeError:
            pass
    view = only_run(store)
    assert view.status == "failed" and view.reason.startswith("fit did not reach its end")


def test_without_with_block_a_raising_fit_leaves_the_run_in_progress(store_dir, digits):
    """The excepthook/atexit then end it (tested in subprocesses below)."""
    cb = TrackerCallback(path="digits/open")
    with pytest.raises(RuntimeError):
        fit(make_model(), digits, [cb, RaiseAt(0, RuntimeError("x"))])
    assert not cb.run.finished and cb.run.in_progress == "fit"
    cb.finish("failed", "cleaned up by the test")
    assert cb.run.status == "failed"


# -- failure, across the process end: excepthook and atexit ---------------------------------------
SCRIPT = textwrap.dedent("""
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    import keras, numpy as np
    from sklearn.datasets import load_digits
    from epochline.integrations.keras import TrackerCallback

    mode = sys.argv[1]
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Trouble(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                if mode == "ctrl-c":
                    os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to this process
                    import time; time.sleep(5)
                raise RuntimeError("loss exploded")

    try:
        model.fit(x[:600], y[:600], validation_split=0.2, epochs=5, verbose=0,
                  callbacks=[TrackerCallback(path="exit/" + mode), Trouble()])
    except RuntimeError:
        if mode != "swallowed":
            raise
    print("script end")
""")


@pytest.mark.parametrize(
    "mode,status,reason",
    [
        ("raise", "failed", "RuntimeError: loss exploded"),
        ("ctrl-c", "interrupted", "KeyboardInterrupt"),
        ("swallowed", "failed", "fit did not reach its end"),
    ],
)
def test_uncaught_errors_end_the_run_at_process_exit(store_dir, store, tmp_path, mode, status, reason):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "EPOCHLINE_STORE": str(store_dir),
        "KERAS_BACKEND": "torch",
        "OMP_NUM_THREADS": "1",
        "EPOCHLINE_EMIT": "none",
    }
    proc = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, env=env, timeout=180
    )
    if mode == "swallowed":
        assert proc.returncode == 0 and "script end" in proc.stdout, proc.stderr
    else:
        assert proc.returncode != 0 and "script end" not in proc.stdout
    view = store().run(f"exit/{mode}")
    assert view.status == status and reason in (view.reason or ""), (view.status, view.reason, proc.stderr)
    assert [r["epoch"] for r in view.epochs()] == [1, 2]


def test_importing_epochline_imports_no_framework():
    code = (
        "import sys, epochline, epochline.integrations; "
        "print([m for m in ('keras', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tracking_off_costs_nothing_and_stores_nothing(store_dir, digits, monkeypatch):
    monkeypatch.setenv("EPOCHLINE_DISABLED", "1")
    x, y = digits
    cb = TrackerCallback(path="digits/off")
    fit(make_model(), digits, [cb], epochs=1)
    cb.model.evaluate(x[1400:], y[1400:], verbose=0, callbacks=[cb])
    assert isinstance(cb.run, epochline.NoOpRun)
    assert not store_dir.exists() or epochline.open(store_dir).runs() == []


# -- the printed lines ------------------------------------------------------------------------------
def test_fit_and_evaluate_print_valid_progress_and_kogu_lines(store_dir, digits, capfd):
    x, y = digits
    cb = TrackerCallback(path="digits/lines")
    history = fit(make_model(), digits, [cb]).history
    result = cb.model.evaluate(x[1400:], y[1400:], verbose=0, callbacks=[cb], return_dict=True)
    out = finished_output(capfd)
    kogu, progress = protocol_lines(out)  # every line checked by the shared checker
    assert progress, out
    per_epoch = [p for p in progress if p.get("status") != "completed"]
    assert sorted({p["epoch"] for p in per_epoch}) == [1, 2, 3, 4]
    for p in progress:
        assert type(p["epoch"]) is int and p["epoch"] >= 1 and p["total_epochs"] == EPOCHS
        for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
            if key in p:
                assert 1.0 < p[key] <= 100.0  # percent, as AiManage reads it
    first = next(p for p in per_epoch if p["epoch"] == 1)
    assert first["val_accuracy"] == pytest.approx(100 * history["val_accuracy"][0], rel=1e-6)
    assert progress[-1]["status"] == "completed"  # the completed line is the last one
    last_with_acc = [p for p in progress if any(k.endswith("_accuracy") for k in p)][-1]
    assert last_with_acc["test_accuracy"] == pytest.approx(100 * result["accuracy"], rel=1e-6)

    params = [o["parameters"] for o in kogu if "parameters" in o]
    assert params and all(KOGU_KEY.match(k) for p in params for k in p)
    assert any(p.get("epochs") == EPOCHS for p in params)
    metrics = [o["metric"] for o in kogu if "metric" in o]
    assert metrics and all(isinstance(m["iteration"], (int, float)) for m in metrics)
    assert all(KOGU_KEY.match(k) for m in metrics for k in m["metrics"])
    assert any("val_accuracy" in m["metrics"] for m in metrics)


# -- issue 13 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"tagz": ["x"]}, TypeError, ["'tagz'", "did you mean 'tags'"]),
        ({"accuracy_scale": "percnt"}, ValueError, ["'fraction' or 'percent'"]),
        ({"path": 5}, TypeError, ["path must be a string"]),
        ({"emit": "kogu,progres"}, ValueError, ["did you mean 'progress'"]),
    ],
)
def test_constructor_arguments_are_checked_when_built(kwargs, error, words):
    with pytest.raises(error) as info:
        TrackerCallback(**kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_second_fit_in_one_run_continues_the_epoch_numbering(store_dir, store, digits):
    model = make_model()
    with TrackerCallback(path="digits/phases") as cb:
        fit(model, digits, [cb], epochs=2, n=400)
        fit(model, digits, [cb], epochs=2, n=400)  # no initial_epoch: Keras counts from 0 again
    view = only_run(store)
    assert [e["epoch"] for e in view.epochs()] == [1, 2, 3, 4]
    assert [r["epoch"] for r in view.metric_rows("val_accuracy")] == [1, 2, 3, 4]


def test_a_callback_registered_twice_records_once(store_dir, store, digits):
    cb = TrackerCallback(path="digits/twice")
    with pytest.warns(RuntimeWarning, match="registered twice"):
        fit(make_model(), digits, [cb, cb], epochs=2, n=400)
    view = only_run(store)
    assert [e["epoch"] for e in view.epochs()] == [1, 2]
    assert len(view.metrics("val_accuracy")) == 2


def test_early_stopping_restored_epoch_is_recorded(store_dir, store, digits):
    class Worse(keras.callbacks.Callback):  # a monitored value that is best at epoch 2
        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = abs(epoch - 1)

    stop = keras.callbacks.EarlyStopping(
        monitor="val_score", mode="min", patience=2, restore_best_weights=True
    )
    cb = TrackerCallback(path="digits/early")
    fit(make_model(), digits, [Worse(), stop, cb], epochs=20, n=400)
    view = only_run(store)
    assert [e["epoch"] for e in view.epochs()] == [1, 2, 3, 4]
    assert view.summary["early_stopping.restored_epoch"] == 2
    assert view.summary["early_stopping.stopped_epoch"] == 4


def test_reasons_carry_no_terminal_colour_codes(store_dir, store, digits):
    with pytest.raises(ValueError):
        with TrackerCallback(path="digits/ansi") as cb:
            fit(
                make_model(),
                digits,
                [cb, RaiseAt(0, ValueError("\x1b[1mbad shape\x1b[0m (3, 4)"))],
                epochs=2,
                n=400,
            )
    assert only_run(store).reason == "ValueError: bad shape (3, 4)"


def test_two_accuracy_names_are_scaled_the_same(store_dir, store, digits):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["acc", keras.metrics.SparseCategoricalAccuracy()],
    )
    fit(model, digits, [TrackerCallback(path="digits/two-acc")], epochs=1, n=400)
    record = only_run(store).epochs()[0]["values"]
    assert record["sparse_categorical_accuracy"] == pytest.approx(record["train_accuracy"])
    assert 10.0 < record["train_accuracy"] <= 100.0
    assert record["val_sparse_categorical_accuracy"] == pytest.approx(record["val_accuracy"])
