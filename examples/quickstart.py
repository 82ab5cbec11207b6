"""Quickstart: train a softmax regression on scikit-learn's bundled digits with plain numpy,
and record it with epochline. No ML framework needed.

    python examples/quickstart.py            # records into ./epochline-runs
    epochline ls && epochline show quickstart/softmax

Set EPOCHLINE_EMIT=progress,kogu to also print the PROGRESS and Kogu lines.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import epochline


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default=None, help="store directory (default ./epochline-runs)")
    args = parser.parse_args()

    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_val, y_train, y_val = train_test_split(
        x, digits.target, test_size=0.25, random_state=args.seed, stratify=digits.target
    )
    rng = np.random.default_rng(args.seed)
    w = rng.normal(0, 0.01, (64, 10))
    b = np.zeros(10)

    with epochline.init(
        "quickstart/softmax",
        params=args,
        ignore_params=["store", "seed"],
        tags=["numpy", "digits"],
        store=args.store,
        total_epochs=args.epochs,
    ) as run:
        run.set_primary_metric("val_accuracy", mode="max")
        run.log_image(
            "samples", np.hstack([img / 16.0 for img in digits.images[:8]]), caption="the first 8 digits"
        )
        step = 0
        for epoch in range(1, args.epochs + 1):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), args.batch_size):
                idx = order[start : start + args.batch_size]
                probs = softmax(x_train[idx] @ w + b)
                loss = -np.log(probs[np.arange(len(idx)), y_train[idx]] + 1e-12).mean()
                grad = probs
                grad[np.arange(len(idx)), y_train[idx]] -= 1
                w -= args.lr * x_train[idx].T @ grad / len(idx)
                b -= args.lr * grad.mean(axis=0)
                run.log({"loss": loss}, step=step, epoch=epoch, stage="train")
                step += 1
            train_probs = softmax(x_train @ w + b)
            val_probs = softmax(x_val @ w + b)
            metrics = {
                "train_loss": float(-np.log(train_probs[np.arange(len(y_train)), y_train]).mean()),
                "train_accuracy": float((train_probs.argmax(1) == y_train).mean()),
                "val_loss": float(-np.log(val_probs[np.arange(len(y_val)), y_val]).mean()),
                "val_accuracy": float((val_probs.argmax(1) == y_val).mean()),
            }
            run.log(metrics, step=step, epoch=epoch)
            run.end_epoch(epoch, metrics)  # accuracies are fractions here: shown in percent
            run.log_histogram("weights", w, step=step)
            # worded so that no line a platform reads as a legacy "Epoch n/N ... accuracy: x" is
            # printed beside the PROGRESS lines (see docs/protocols.md)
            print(
                f"epoch {epoch} of {args.epochs}: {100 * metrics['val_accuracy']:.1f} % of the "
                "validation digits right"
            )
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "weights.npz"
            np.savez(weights, w=w, b=b)
            run.log_artifact(weights)  # copied into the store: the temporary folder goes
        # the summary gets the final record at finish: the best epoch's values, best_epoch, ...
        # Printed before the run ends: with the emitters on, the PROGRESS completed line (printed
        # at finish) must be the last line the platform reads.
        print(f"recording run {run.id}: epochline show {run.id}")


if __name__ == "__main__":
    main()
