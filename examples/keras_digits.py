"""Train a small Keras 3 MLP on scikit-learn's digits and record it with epochline.

    KERAS_BACKEND=torch python examples/keras_digits.py --epochs 10
    epochline show digits/keras          # the run: params, per-epoch records, test metrics

It prints one ``PROGRESS:`` line and Kogu JSON lines per epoch (turn them off with
``EPOCHLINE_EMIT=none``), stores the best model written by ``ModelCheckpoint``, a picture of the
first layer's weights every few epochs, and the held-out test accuracy from ``evaluate()``.
Reaches > 90 % validation accuracy within a few seconds on a CPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")  # must be set before keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from epochline.integrations.keras import TrackerCallback  # noqa: E402


def first_layer_image(model: keras.Model, epoch: int) -> dict:
    """The first Dense layer's weights as a grid of 8x8 tiles (one per hidden unit)."""
    if epoch % 5:
        return {}
    w = keras.ops.convert_to_numpy(model.layers[0].kernel)  # (64, hidden)
    w = (w - w.min()) / (w.max() - w.min() + 1e-12)
    tiles = w.T.reshape(-1, 8, 8)
    cols = 8
    rows = -(-len(tiles) // cols)
    grid = np.zeros((rows * 9, cols * 9), dtype="float32")
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = tile
    return {"first_layer_weights": (grid * 255).astype("uint8")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--store", default=None, help="store directory (default: EPOCHLINE_STORE or ./epochline-runs)"
    )
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(args.hidden, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )

    best = os.path.join(tempfile.mkdtemp(prefix="keras-digits-"), "best.keras")
    checkpoint = keras.callbacks.ModelCheckpoint(
        best, monitor="val_accuracy", mode="max", save_best_only=True
    )
    # The with block is the run: it ends `completed` after evaluate(), or `failed`/`interrupted`
    # with the exception in flight if fit() raises or is stopped with Ctrl-C.
    with TrackerCallback(
        path="digits/keras",
        params=vars(args),
        store=args.store,
        images=first_layer_image,
        checkpoint=checkpoint,
    ) as tracker:
        model.fit(
            x_train,
            y_train,
            validation_split=0.2,
            epochs=args.epochs,
            batch_size=args.batch_size,
            verbose=0,
            callbacks=[checkpoint, tracker],
        )
        result = model.evaluate(x_test, y_test, verbose=0, callbacks=[tracker], return_dict=True)
        tracker.run.comment(f"best model by val_accuracy: {checkpoint.best:.4f}")
    print(
        f"test accuracy {100 * result['accuracy']:.2f} % - run {tracker.run.id} "
        f"({tracker.run.status}) in {tracker.run.store_uri}"
    )


if __name__ == "__main__":
    main()
