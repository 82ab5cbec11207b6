"""Overhead of TrackerCallback on a real (tiny) Trainer run: the same training with and without it.

    OMP_NUM_THREADS=1 python benchmarks/bench_transformers.py [--reps 5] [--epochs 2] [--logging-steps 5]

The paired protocol and the report are those of ``benchmarks/paired.py``. Each run builds the same
model from the same seed and times ``trainer.train()`` only (the callback's run is created inside it,
at train begin, so its start-up, params, metrics, epoch records, the store writes it queues and the
final flush are all in the timing). stdout is sent to /dev/null for both sides (the Trainer prints its
logs too; the PROGRESS/Kogu lines are printed with the default emit)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import numpy as np
import torch
from paired import add_timer, quiet_seconds, report, run_paired
from transformers import Trainer, TrainingArguments
from transformers_tiny import accuracy, build_model, sentences

from epochline.integrations.transformers import TrackerCallback

EVENTS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_epoch_end",
    "on_log",
    "on_evaluate",
    "on_predict",
    "on_save",
    "on_train_end",
)


def one_run(tracked: bool, opts: argparse.Namespace, store: str, out: str) -> tuple:
    rng = np.random.default_rng(0)
    train, val = sentences(opts.train, rng), sentences(200, rng)
    model = build_model(seed=0)
    args = TrainingArguments(
        output_dir=out,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        eval_strategy="epoch",
        num_train_epochs=opts.epochs,
        per_device_train_batch_size=32,
        learning_rate=3e-3,
        logging_steps=opts.logging_steps,
        disable_tqdm=True,
        seed=42,
    )
    callbacks = (
        [add_timer(TrackerCallback(path="bench/transformers", store=store), EVENTS)] if tracked else []
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    elapsed = quiet_seconds(trainer.train)
    if tracked:
        assert callbacks[0].run.status == "completed"
    return elapsed, sum(cb.spent for cb in callbacks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="measured pairs")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train", type=int, default=640, help="training sentences")
    parser.add_argument("--logging-steps", type=int, default=5)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, out = os.path.join(tmp, "store"), os.path.join(tmp, "out")
        times, inside = run_paired(
            {
                "without callback": lambda: one_run(False, opts, store, out),
                "with TrackerCallback": lambda: one_run(True, opts, store, out),
            },
            opts.reps,
        )
    steps = -(-opts.train // 32)
    report(
        f"transformers {__import__('transformers').__version__}, torch {torch.__version__}, "
        f"{opts.reps} reps, {opts.epochs} epochs x {steps} steps, logging every "
        f"{opts.logging_steps} steps",
        times,
        inside,
    )


if __name__ == "__main__":
    main()
