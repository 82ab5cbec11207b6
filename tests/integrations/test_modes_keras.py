"""Keras in the modes users use (issue 13), each a real fit on scikit-learn's digits (seconds):
epochs without validation (``validation_freq=2``), and fit-then-evaluate outside a ``with`` block.

What each test holds the three final channels to: the store's summary, the Kogu ``iteration -1``
line and the PROGRESS ``completed`` line come from one final record (docs/protocols.md).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import pytest  # noqa: E402

keras = pytest.importorskip("keras")

from epochline.integrations.keras import TrackerCallback  # noqa: E402
from linecheck import protocol_lines  # noqa: E402

from .conftest import finished_output  # noqa: E402
from . import test_keras as base  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
digits = base.digits  # the shared fixture: the digits, shuffled once
make_model, only_run = base.make_model, base.only_run


def plotted(kogu: list) -> dict:
    """{plot name: every series any of its declarations named} (a plot may be declared again
    when a series of its family first appears)."""
    out: dict = {}
    for obj in kogu:
        if "plot" in obj:
            out.setdefault(obj["plot"]["name"], set()).update(obj["plot"]["metrics"])
    return out


def final_lines(kogu: list, progress: list) -> tuple:
    finals = [o["metric"]["metrics"] for o in kogu if "metric" in o and o["metric"]["iteration"] == -1]
    completed = [p for p in progress if p["status"] == "completed"]
    assert len(finals) == 1 and len(completed) == 1, (finals, completed)
    assert progress[-1] is completed[0]  # the consumer reads the final accuracy from the last line
    return finals[0], completed[0]


def test_validation_every_second_epoch_keeps_val_series_and_final_values(store_dir, store, digits, capfd):
    x, y = digits
    cb = TrackerCallback(path="modes/validation-freq")
    history = make_model().fit(
        x[:400], y[:400], validation_split=0.25, validation_freq=2, epochs=3, batch_size=64,
        verbose=0, callbacks=[cb],
    ).history  # fmt: skip
    assert len(history["val_accuracy"]) == 1 and len(history["accuracy"]) == 3  # epoch 2 only
    kogu, progress = protocol_lines(finished_output(capfd))

    # the plots name the val series although epoch 1 had none (declared when they first appear)
    plots = plotted(kogu)
    assert {"train_loss", "val_loss"} <= plots["loss"], plots
    assert {"train_accuracy", "val_accuracy"} <= plots["accuracy"], plots

    view = only_run(store)
    records = {e["epoch"]: e["values"] for e in view.epochs()}
    assert sorted(records) == [1, 2, 3] and "val_accuracy" not in records[3]
    val_acc, val_loss = 100 * history["val_accuracy"][0], history["val_loss"][0]
    assert records[2]["val_accuracy"] == pytest.approx(val_acc)

    # the final record: the validated epoch's values, validation kept, no test value invented
    final, completed = final_lines(kogu, progress)
    summary = view.summary
    for channel in (summary, final):
        assert channel["best_epoch"] == 2 and channel["total_epochs"] == 3
        assert channel["val_accuracy"] == pytest.approx(val_acc)
        assert channel["val_loss"] == pytest.approx(val_loss)
        assert channel["train_loss"] == pytest.approx(history["loss"][1])  # epoch 2's, not 3's
        assert not any(k.startswith("test_") for k in channel), channel
    # PROGRESS: the protocol's one final-accuracy field is test_accuracy (seed 001; the
    # consumer's priority test > val > train): it holds the best validated epoch's accuracy,
    # beside that epoch's losses, never an older or a train accuracy
    assert (completed["epoch"], completed["total_epochs"]) == (3, 3)
    assert completed["val_loss"] == pytest.approx(val_loss)
    assert completed["train_loss"] == pytest.approx(history["loss"][1])
    assert completed["test_accuracy"] == pytest.approx(val_acc) and "test_loss" not in completed


def test_fit_then_evaluate_without_a_with_block_prints_one_final_set(store_dir, store, digits, capfd):
    x, y = digits
    cb = TrackerCallback(path="modes/fit-evaluate")
    model = make_model()
    model.fit(x[:400], y[:400], validation_split=0.25, epochs=2, batch_size=64, verbose=0, callbacks=[cb])
    result = model.evaluate(x[1400:], y[1400:], verbose=0, callbacks=[cb], return_dict=True)
    kogu, progress = protocol_lines(finished_output(capfd))

    final, completed = final_lines(kogu, progress)  # exactly one of each, completed last
    test_acc, test_loss = 100 * result["accuracy"], result["loss"]
    assert completed["test_accuracy"] == pytest.approx(test_acc, rel=1e-6)
    assert completed["test_loss"] == pytest.approx(test_loss, rel=1e-6)
    assert (completed["epoch"], completed["total_epochs"]) == (2, 2)
    view = only_run(store)
    assert view.status == "completed" and view.reason is None
    for channel in (view.summary, final):
        assert channel["test_accuracy"] == pytest.approx(test_acc, rel=1e-6)
        assert channel["test_loss"] == pytest.approx(test_loss, rel=1e-6)
        assert "val_accuracy" in channel  # the fit's validation stays beside the test values
    assert sum(p["status"] != "training" for p in progress) == 1


# -- what works and must keep working (issue 13's list) --------------------------------------------
def test_early_stopping_restored_epoch_is_the_final_record_on_every_channel(store_dir, store, digits, capfd):
    class BestAtEpoch2(keras.callbacks.Callback):  # a monitored value that is best at epoch 2
        def on_epoch_end(self, epoch, logs=None):
            logs["val_score"] = abs(epoch - 1)

    stop = keras.callbacks.EarlyStopping(
        monitor="val_score", mode="min", patience=2, restore_best_weights=True
    )
    x, y = digits
    history = make_model().fit(
        x[:400], y[:400], validation_split=0.25, epochs=20, batch_size=64, verbose=0,
        callbacks=[BestAtEpoch2(), stop, TrackerCallback(path="modes/restored")],
    ).history  # fmt: skip
    assert len(history["loss"]) == 4  # stopped after epoch 4, weights of epoch 2 restored
    kogu, progress = protocol_lines(finished_output(capfd))
    final, completed = final_lines(kogu, progress)
    view = only_run(store)
    for channel in (view.summary, final):
        assert channel["best_epoch"] == 2 and channel["total_epochs"] == 4
        assert channel["val_accuracy"] == pytest.approx(100 * history["val_accuracy"][1])
        assert channel["train_loss"] == pytest.approx(history["loss"][1])
    assert (completed["epoch"], completed["total_epochs"]) == (4, 4)  # 100 %, not 4/20
    assert completed["test_accuracy"] == pytest.approx(100 * history["val_accuracy"][1])


def test_generator_with_steps_per_epoch(store_dir, store, digits):
    x, y = digits

    def batches():  # endless, no length: Keras needs steps_per_epoch
        i = 0
        while True:
            yield x[i : i + 32], y[i : i + 32]
            i = (i + 32) % 1024

    make_model().fit(
        batches(), steps_per_epoch=5, epochs=3, verbose=0, shuffle=False, validation_data=(x[1400:1500], y[1400:1500]),
        callbacks=[TrackerCallback(path="modes/steps-per-epoch")],
    )  # fmt: skip
    view = only_run(store)
    assert view.status == "completed" and view.params["steps"] == 5
    assert [e["epoch"] for e in view.epochs()] == [1, 2, 3]
    assert [r["step"] for r in view.metric_rows("val_accuracy")] == [5, 10, 15]


def test_loss_only_model_has_loss_records_and_no_accuracy(store_dir, store, digits, capfd):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # no metrics
    x, y = digits
    history = model.fit(
        x[:400], y[:400], validation_split=0.25, epochs=2, verbose=0,
        callbacks=[TrackerCallback(path="modes/loss-only")],
    ).history  # fmt: skip
    kogu, progress = protocol_lines(finished_output(capfd))
    view = only_run(store)
    assert view.status == "completed"
    for record in view.epochs():
        assert {"train_loss", "val_loss"} <= set(record["values"]) and not record["percent"]
    assert set(plotted(kogu)) == {"loss"}
    final, completed = final_lines(kogu, progress)
    assert final["best_epoch"] == 1 + history["val_loss"].index(min(history["val_loss"]))  # lowest val_loss
    assert completed["val_loss"] == pytest.approx(min(history["val_loss"]))
    assert not any(k.endswith("accuracy") for k in completed)


def test_predict_records_nothing(store_dir, store, digits, capfd):
    x, y = digits
    cb = TrackerCallback(path="modes/predict")
    model = make_model()
    model.fit(x[:400], y[:400], epochs=1, verbose=0, callbacks=[cb])
    before = only_run(store)
    model.predict(x[1400:], verbose=0, callbacks=[cb])  # after fit: nothing added, nothing printed
    model.predict(x[1400:], verbose=0, callbacks=[TrackerCallback(path="modes/predict-only")])
    kogu, progress = protocol_lines(finished_output(capfd))
    after = only_run(store)  # no run for the predict-only callback
    assert (after.id, after.status, after.summary) == (before.id, "completed", before.summary)
    assert set(after.metric_keys()) == set(before.metric_keys()) and not any(
        k.startswith(("test_", "predict")) for k in after.metric_keys()
    )
    assert len(final_lines(kogu, progress)) == 2  # still exactly one final set
