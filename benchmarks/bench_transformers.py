"""Overhead of TrackerCallback on a real (tiny) Trainer run: the same training with and without it.

    OMP_NUM_THREADS=1 python benchmarks/bench_transformers.py [--reps 5] [--epochs 2] [--logging-steps 5]

Pairs run in alternating order (with/without, then without/with, ...) after one discarded warm-up
of each, so drift of a shared machine hits both sides alike. Each run builds the same model from the
same seed and times ``trainer.train()`` only (the callback's run is created inside it, at train
begin, so its start-up, params, metrics, epoch records, the store writes it queues and the final
flush are all in the timing). stdout is sent to /dev/null for both sides (the Trainer prints its
logs too; the PROGRESS/Kogu lines are printed with the default emit). Reports the medians, the
median of the paired differences, the overhead in percent, and the time spent inside the
callback's own event methods (a figure that machine noise does not swamp).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

from epochline.integrations.transformers import TrackerCallback  # noqa: E402
from transformers_tiny import accuracy, build_model, sentences  # noqa: E402


class TimedTracker(TrackerCallback):
    """The callback, with the time spent inside its event methods added up (the part of the
    overhead that the training waits for; the store writes happen on the dispatcher thread)."""

    inside = 0.0


def _timed(name: str):
    method = getattr(TrackerCallback, name)

    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            TimedTracker.inside += time.perf_counter() - start

    return wrapper


for _name in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_log", "on_evaluate",
              "on_predict", "on_save", "on_train_end"):
    setattr(TimedTracker, _name, _timed(_name))


def one_run(tracked: bool, opts: argparse.Namespace, store: str, out: str) -> float:
    rng = np.random.default_rng(0)
    train, val = sentences(opts.train, rng), sentences(200, rng)
    model = build_model(seed=0)
    args = TrainingArguments(output_dir=out, report_to="none", use_cpu=True, save_strategy="no",
                             eval_strategy="epoch", num_train_epochs=opts.epochs,
                             per_device_train_batch_size=32, learning_rate=3e-3,
                             logging_steps=opts.logging_steps, disable_tqdm=True, seed=42)
    callbacks = [TimedTracker(path="bench/transformers", store=store)] if tracked else []
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      compute_metrics=accuracy, callbacks=callbacks)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        start = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - start
    if tracked:
        assert callbacks[0].run.status == "completed"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="measured pairs")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=640, help="training sentences")
    parser.add_argument("--logging-steps", type=int, default=5)
    opts = parser.parse_args()
    times = {True: [], False: []}
    inside = []
    with tempfile.TemporaryDirectory() as tmp:
        store, out = os.path.join(tmp, "store"), os.path.join(tmp, "out")
        one_run(False, opts, store, out), one_run(True, opts, store, out)  # warm-up, discarded
        for rep in range(opts.reps):
            for tracked in ((True, False) if rep % 2 == 0 else (False, True)):
                TimedTracker.inside = 0.0
                times[tracked].append(one_run(tracked, opts, store, out))
                if tracked:
                    inside.append(TimedTracker.inside)
    base, with_cb = statistics.median(times[False]), statistics.median(times[True])
    diffs = [t - b for t, b in zip(times[True], times[False])]
    steps = opts.epochs * -(-opts.train // 32)
    print(f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
          f"{opts.reps} pairs, {opts.epochs} epochs x {steps // opts.epochs} steps, "
          f"logging every {opts.logging_steps} steps")
    print(f"without callback: median {base:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times[False])})")
    print(f"with callback:    median {with_cb:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times[True])})")
    print(f"overhead: {with_cb - base:+.3f} s = {100 * (with_cb - base) / base:+.1f} % of the medians; "
          f"median paired difference {statistics.median(diffs):+.3f} s "
          f"({100 * statistics.median(diffs) / base:+.1f} %)")
    spent = statistics.median(inside)
    print(f"time inside the callback's events: median {1000 * spent:.1f} ms per run "
          f"({100 * spent / with_cb:.2f} % of the tracked training)")


if __name__ == "__main__":
    main()
