"""Record a small store worth looking at in ``epochline ui``: two configurations x three seeds of a
softmax regression on scikit-learn's bundled digits (plain numpy), plus one run that fails.

    python examples/ui_demo.py --store ./demo-runs
    epochline ui --store ./demo-runs          # then open http://127.0.0.1:23300/

Each run logs per-batch loss, per-epoch metrics and records, a weight histogram and an image of
the first validation digits with their predictions per epoch, log lines and a weights artifact.
The viewer's tests and docs screenshots use this store.
"""

from __future__ import annotations

import argparse
import logging
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


def train(
    store: str,
    path: str,
    lr: float,
    seed: int,
    epochs: int,
    fail_at: int = 0,
    name: str = "",
    tags: tuple = (),
) -> str:
    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_val, y_train, y_val = train_test_split(
        x, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, (64, 10))
    b = np.zeros(10)
    params = {
        "model": "softmax",
        "optimizer": {"name": "sgd", "lr": lr, "batch_size": 64},
        "seed": seed,
        "epochs": epochs,
    }
    log = logging.getLogger(f"demo.{seed}")
    log.setLevel(logging.INFO)
    with epochline.init(
        path,
        name=name or None,
        params=params,
        ignore_params=["seed"],
        tags=tags,
        store=store,
        total_epochs=epochs,
    ) as run:
        log.addHandler(run.logging_handler())
        run.set_primary_metric("val_accuracy", mode="max")
        step = 0
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(x_train))
            for start in range(0, len(order), 64):
                idx = order[start : start + 64]
                probs = softmax(x_train[idx] @ w + b)
                loss = -np.log(probs[np.arange(len(idx)), y_train[idx]] + 1e-12).mean()
                probs[np.arange(len(idx)), y_train[idx]] -= 1
                w -= lr * x_train[idx].T @ probs / len(idx)
                b -= lr * probs.mean(axis=0)
                run.log({"loss": float(loss)}, step=step, epoch=epoch, stage="train")
                step += 1
            if fail_at and epoch == fail_at:
                log.error("loss diverged at epoch %d", epoch)
                raise FloatingPointError(f"loss diverged at epoch {epoch}")
            val = softmax(x_val @ w + b)
            train_probs = softmax(x_train @ w + b)
            metrics = {
                "train_loss": float(-np.log(train_probs[np.arange(len(y_train)), y_train]).mean()),
                "train_accuracy": float((train_probs.argmax(1) == y_train).mean()),
                "val_loss": float(-np.log(val[np.arange(len(y_val)), y_val]).mean()),
                "val_accuracy": float((val.argmax(1) == y_val).mean()),
            }
            run.log(metrics, step=step, epoch=epoch)
            run.end_epoch(epoch, metrics)
            run.log_histogram("weights", w, step=step)
            strip = np.hstack([x_val[i].reshape(8, 8) for i in range(10)])
            run.log_image(
                "val_digits",
                strip,
                step=step,
                caption="predicted " + " ".join(str(p) for p in val[:10].argmax(1)),
            )
            log.info("epoch %d/%d val accuracy %.1f%%", epoch, epochs, 100 * metrics["val_accuracy"])
            if metrics["val_loss"] > 1.0:
                log.warning("val loss still above 1.0 after epoch %d", epoch)
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "weights.npz"
            np.savez(weights, w=w, b=b)
            run.log_artifact(weights)
        run.summary({"final_val_accuracy": metrics["val_accuracy"]})
        run.comment(f"lr={lr}, seed {seed}: a softmax baseline")
    return run.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=None, help="store directory (default ./epochline-runs)")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    for lr in (0.1, 0.5):
        for seed in (0, 1, 2):
            train(args.store, "digits/softmax", lr, seed, args.epochs, tags=("digits", f"lr{lr}"))
    try:
        train(args.store, "digits/softmax-hot", 25.0, 0, args.epochs, fail_at=3, tags=("digits",))
    except FloatingPointError:
        pass  # recorded as failed, with its reason
    print(f"recorded 7 runs; view them: epochline ui{' --store ' + args.store if args.store else ''}")


if __name__ == "__main__":
    main()
