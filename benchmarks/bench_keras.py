"""Overhead of TrackerCallback on a real Keras fit (scikit-learn digits, small MLP, CPU).

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/bench_keras.py --reps 7

The paired protocol and the report are those of ``benchmarks/paired.py``. Only ``model.fit`` is timed; the tracked fits include starting and finishing the run (the store's
writer thread drains before ``fit`` returns). Emitted lines go to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
from paired import add_timer, quiet_seconds, report, run_paired
from sklearn.datasets import load_digits

from epochline.integrations.keras import TrackerCallback

VARIANTS = {
    "plain fit": lambda store: [],
    "tracker (store only)": lambda store: [TrackerCallback(path="bench/keras", store=store, emit="none")],
    "tracker + kogu,progress": lambda store: [TrackerCallback(path="bench/keras", store=store)],
    "tracker + every batch": lambda store: [
        TrackerCallback(path="bench/keras", store=store, emit="none", log_every_n_batches=1)
    ],
}


HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end", "on_test_begin", "on_test_end")


def hooks_of(cb) -> tuple:
    """The batch hook is timed only where the tracker defines it: wrapping it elsewhere would make
    Keras call every callback synchronously on each batch and distort the plain variants."""
    return HOOKS + (("on_train_batch_end",) if "on_train_batch_end" in vars(cb) else ())


def one_fit(x, y, callbacks, epochs: int, batch_size: int) -> float:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return quiet_seconds(
        lambda: model.fit(
            x, y, validation_split=0.2, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=callbacks
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    with tempfile.TemporaryDirectory() as store:

        def variant(make):
            def run():
                callbacks = [add_timer(cb, hooks_of(cb)) for cb in make(store)]
                seconds = one_fit(x, y, callbacks, args.epochs, args.batch_size)
                return seconds, sum(cb.spent for cb in callbacks)

            return run

        times, inside = run_paired({name: variant(make) for name, make in VARIANTS.items()}, args.reps)
    steps = -(-int(len(x) * 0.8) // args.batch_size)
    report(
        f"keras {keras.__version__} ({keras.backend.backend()}), python {sys.version.split()[0]}, "
        f"{args.reps} reps x {args.epochs} epochs x {steps} steps, batch {args.batch_size}",
        times,
        inside,
    )


if __name__ == "__main__":
    main()
