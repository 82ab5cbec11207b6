"""Overhead of TrackerCallback on a real Keras fit (scikit-learn digits, small MLP, CPU).

    OMP_NUM_THREADS=1 KERAS_BACKEND=torch python benchmarks/bench_keras.py --reps 7

Each repetition fits the same model (same seed) once per variant, in an order that rotates from
one repetition to the next, so that drift on a shared machine hits every variant alike. Reported:
median seconds per fit, and the median of the per-repetition ratios to the plain fit (overhead %).
Also reported: the time spent inside the tracker's own hooks per fit (the callback's direct
cost, which the noise of a shared machine does not blur). Only ``model.fit`` is timed; the tracked fits include starting and finishing the run (the store's
writer thread drains before ``fit`` returns). Emitted lines go to /dev/null.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from epochline.integrations.keras import TrackerCallback  # noqa: E402

VARIANTS = {
    "plain fit": lambda store: [],
    "tracker (store only)": lambda store: [TrackerCallback(path="bench/keras", store=store, emit="none")],
    "tracker + kogu,progress": lambda store: [TrackerCallback(path="bench/keras", store=store)],
    "tracker + every batch": lambda store: [TrackerCallback(path="bench/keras", store=store, emit="none",
                                                            log_every_n_batches=1)],
}


HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end", "on_test_begin",
         "on_test_end")


def timed(callbacks: list, spent: list) -> list:
    """Wrap each tracker hook so the seconds spent inside it add up in ``spent[0]``: a direct
    measure of the callback's own cost, robust to the noise of a shared machine."""
    for cb in callbacks:
        names = HOOKS + (("on_train_batch_end",) if "on_train_batch_end" in vars(cb) else ())
        for name in names:
            def wrapper(*a, _f=getattr(cb, name), **k):
                t = time.perf_counter()
                try:
                    return _f(*a, **k)
                finally:
                    spent[0] += time.perf_counter() - t
            setattr(cb, name, wrapper)
    return callbacks


def one_fit(x, y, callbacks, epochs: int, batch_size: int) -> float:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        start = time.perf_counter()
        model.fit(x, y, validation_split=0.2, epochs=epochs, batch_size=batch_size, verbose=0,
                  callbacks=callbacks)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    names = list(VARIANTS)
    times = {n: [] for n in names}
    inside = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as store:
        one_fit(x, y, VARIANTS[names[1]](store), 1, args.batch_size)  # warm-up: imports, first build
        one_fit(x, y, [], 1, args.batch_size)
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                spent = [0.0]
                callbacks = timed(VARIANTS[name](store), spent)
                times[name].append(one_fit(x, y, callbacks, args.epochs, args.batch_size))
                inside[name].append(spent[0])
    steps = -(-int(len(x) * 0.8) // args.batch_size)
    print(f"keras {keras.__version__} ({keras.backend.backend()}), python {sys.version.split()[0]}, "
          f"{args.reps} reps x {args.epochs} epochs x {steps} steps, batch {args.batch_size}")
    base = times[names[0]]
    print(f"{'variant':<26}{'median s':>10}{'min s':>9}{'paired overhead':>17}"
          f"{'in callback ms':>16}{'% of fit':>10}")
    for name in names:
        ratios = [t / b for t, b in zip(times[name], base)]
        over = (statistics.median(ratios) - 1) * 100
        ms = statistics.median(inside[name]) * 1000
        share = statistics.median(i / t for i, t in zip(inside[name], times[name])) * 100
        print(f"{name:<26}{statistics.median(times[name]):>10.3f}{min(times[name]):>9.3f}"
              f"{over:>+16.1f}%{ms:>16.1f}{share:>9.2f}%")
    print("paired overhead: median over repetitions of (variant time / plain time of the same "
          "repetition) - 1; in callback: median time spent inside the tracker's hooks per fit")


if __name__ == "__main__":
    main()
